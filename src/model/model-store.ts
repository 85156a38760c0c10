// A model directory on disk: manifest.json + its task log + a masks file (docs/model-format.md). All file I/O
// of the project's models lives here.
//
// Durability (details in docs/model-format.md, "Durability rules"):
// - manifest.json and the task log it names are the source of truth; the manifest is only ever replaced
//   atomically (temp, fsync, rename, fsync dir); a task change appends one checksummed log record and syncs it,
//   so adding or removing a task costs O(1) in the task count. A checkpoint (in the background) folds the log
//   into a new manifest with a new, empty log.
// - The masks file is append-only. Its first `manifest.masks.bytes` bytes (the committed region) hold the
//   header and exactly one record per listed or removed task; bytes past that are ignored (a torn or
//   unacknowledged append) and are cut off by the next append.
// - A mask record is fsynced before the task log record that commits it is written; an operation resolves
//   only after its log record (or a new manifest and its directory entry) is durable.
// - Compaction writes a new masks file under a new name (masks.<n>.bin), fsyncs it and the directory,
//   then switches the manifest to it (with a new, empty task log), then deletes the old files.
//
// Concurrency: one writer per directory. Writes from this process to one directory are serialised by an
// in-process queue keyed by the resolved path; no lock protects against a second writing process.
// Readers (loadModel) take no lock and may run while a write is in progress: they see the old or new state.
import { existsSync } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, taskExists, taskNotFound } from '../contract/errors.ts';
import type { ModelSpec } from '../contract/model.ts';
import type { TaskSpec } from '../contract/task.ts';
import { maskWords, weightCount } from '../core/architecture.ts';
import { maskDensity, popcount } from '../core/mask-bank.ts';
import { PRNG_VERSION } from '../core/prng.ts';
import {
  type FaultHook,
  type StepFn,
  fsyncDir,
  replaceFileAtomically,
  stepper,
  writeAll,
  writeFileDurably,
} from './durable-fs.ts';
import { crc32 } from './crc32.ts';
import { ModelFileError } from './errors.ts';
import {
  LOG_FILE_PATTERN,
  MASKS_FILE_PATTERN,
  MANIFEST_FILE,
  type Manifest,
  type RemovedRecord,
  type TaskEntry,
  type UnknownTaskThreshold,
  checksumLine,
  manifestPieces,
  validateManifest,
  validateTaskEntry,
} from './manifest.ts';
import { type ModelState, currentState, forgetState, keepAppended, keepRewritten, manifestCopy } from './model-state.ts';
import { LOG_HEADER_BYTES, type LogEntry, encodeLogHeader, encodeLogRecord } from './task-log.ts';
import {
  MASKS_HEADER_BYTES,
  MAX_ID_BYTES,
  RECORD_FIXED_BYTES,
  checkHeader,
  encodeHeader,
  encodeRecord,
  newFileId,
  paddingProblem,
  readRecords,
  recordHeaderBytes,
  wholeRecordsPrefix,
} from './mask-file.ts';

export interface ModelInit extends ModelSpec {
  /** Defaults to the PRNG version of this build (the only one it can regenerate). */
  prngVersion?: number;
}

export interface LoadedModel {
  manifest: Manifest;
  /** Canonical packed masks of the listed tasks, in manifest order. */
  masks: Map<string, Uint32Array>;
}

export interface StoreOptions {
  /** Crash-point hook for tests (durable-fs.ts). */
  faults?: FaultHook;
  /** removeTask compacts when removed records exceed this fraction of all records (default 0.5; >= 1 never). */
  compactAbove?: number;
  /** A checkpoint (in the background) is due once the task log holds more than this many bytes and more than manifest.json (default 1 MiB). */
  checkpointAbove?: number;
}

export const DEFAULT_COMPACT_ABOVE = 0.5;
export const DEFAULT_CHECKPOINT_ABOVE = 1 << 20;

/** Whether `dir` holds a model (its manifest exists; whether it is intact is loadModel's question). */
export function hasModel(dir: string): boolean {
  return existsSync(path.join(dir, MANIFEST_FILE));
}

/** Reads and fully verifies a model: manifest, task log, masks header, every committed record, and their agreement. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  let masks = new Map<string, Uint32Array>();
  const manifest = await loadModelInto(dir, () => (masks = new Map()), (id, mask) => masks.set(id, mask.slice()));
  return { manifest, masks };
}

/**
 * loadModel for a loader with its own store of masks: `add` receives each live task's mask in manifest order as it
 * is verified (the masks are never all in memory at once; each is valid only during the call: copy what you keep). `restart` gets the manifest before the first mask, and
 * again whenever a concurrent compaction makes the load start over. Any failure throws, and what `add` got must then be dropped.
 * `countSetBits`, for a loader that counts the set bits of all it was given in one pass after the last `add` (a bank
 * and the addon's kernels: a few ms at k = 2500, where counting each mask as it comes costs 50-150 ms of a start):
 * the tasks' densities are checked with its counts (by task id) instead.
 */
export async function loadModelInto(
  dir: string,
  restart: (manifest: Manifest) => void,
  add: (id: string, mask: Uint32Array) => void,
  countSetBits?: () => (id: string) => number,
): Promise<Manifest> {
  // A concurrent compaction may delete the masks file an older manifest names: if loading fails and the
  // manifest has changed meanwhile, load again from the new one.
  for (let attempt = 0; ; attempt++) {
    const state = await currentState(dir);
    try {
      restart(manifestCopy(state));
      return await verifiedModel(dir, state, add, countSetBits);
    } catch (e) {
      const now = await currentState(dir).catch(() => undefined);
      if (attempt >= 3 || !now || now === state) throw e;
    }
  }
}

/** The verified manifest with its task log applied (cheap: does not read the masks; kept in memory while the files are unchanged). */
export async function readManifest(dir: string): Promise<Manifest> {
  return manifestCopy(await currentState(dir));
}

/** Creates a model with no tasks. Refuses a directory that already holds a model or other files. */
export async function createModel(dir: string, init: ModelInit, options: StoreOptions = {}): Promise<Manifest> {
  return withModelWrite(dir, async () => {
    const step = stepper(options.faults, 'create');
    const manifest = checkedInput(() =>
      validateManifest(
        {
          format: 'supsup-model',
          formatVersion: 1,
          architecture: init.architecture,
          seed: init.seed,
          prngVersion: init.prngVersion ?? PRNG_VERSION,
          normalization: init.normalization,
          masks: { file: 'masks.bin', fileId: newFileId(), bytes: MASKS_HEADER_BYTES },
          log: { file: nextLogFile(undefined), fileId: newFileId() },
          tasks: [],
          removed: [],
        },
        'model',
      ),
    );
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined) {
      // Make the new directory entries durable: the parent of each directory mkdir created.
      for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
        await fsyncDir(d);
        if (d === path.dirname(created) || d === path.dirname(d)) break;
      }
    }
    const stray = (await readdir(dir)).filter((f) => !MASKS_FILE_PATTERN.test(f) && !LOG_FILE_PATTERN.test(f) && f !== `${MANIFEST_FILE}.tmp`);
    if (stray.includes(MANIFEST_FILE)) throw new Error(`${dir} already holds a model (${MANIFEST_FILE} exists)`);
    if (stray.length > 0) throw new Error(`${dir} is not empty (${stray.slice(0, 3).join(', ')}): a model needs a directory of its own`);
    const header = encodeHeader({ ...manifest, fileId: manifest.masks.fileId });
    await writeFileDurably(path.join(dir, manifest.masks.file), header, step, 'create:write-masks', 'create:fsync-masks');
    await writeFileDurably(path.join(dir, manifest.log!.file), encodeLogHeader(manifest.log!.fileId), step, 'create:write-log', 'create:fsync-log');
    await step('create:fsync-dir');
    await fsyncDir(dir);
    await keepRewritten(dir, manifest, await writeManifest(dir, manifest, step));
    return structuredClone(manifest);
  });
}

/** Appends one task; resolves when it is durable (acknowledged). */
export async function appendTask(dir: string, task: TaskSpec, mask: Uint32Array, options: StoreOptions = {}): Promise<TaskEntry> {
  return (await appendTasks(dir, [{ task, mask }], options))[0];
}

/**
 * Appends several tasks: their records to the masks file (one fsync), then one task log record naming them all
 * (one fsync), so all or none become visible. O(1) in the number of tasks already stored.
 */
export async function appendTasks(
  dir: string,
  items: { task: TaskSpec; mask: Uint32Array }[],
  options: StoreOptions = {},
): Promise<TaskEntry[]> {
  return withModelWrite(dir, async () => {
    const step = stepper(options.faults, 'append');
    const state = await writableState(dir, options);
    const old = state.manifest;
    const added = newTaskEntries(old, state.live, items);
    const masks = items.map((i) => i.mask.slice()); // what was checked is what gets written, whatever the caller does meanwhile

    const file = path.join(dir, old.masks.file);
    const fh = await openMasks(file, 'r+');
    let end = old.masks.bytes;
    try {
      const header = Buffer.alloc(MASKS_HEADER_BYTES);
      const { bytesRead } = await fh.read(header, 0, MASKS_HEADER_BYTES, 0);
      checkHeader(header.subarray(0, bytesRead), file, { ...old, fileId: old.masks.fileId });
      const size = (await fh.stat()).size;
      if (size < end) throw truncatedError(file, end, size);
      await step('append:truncate-tail');
      await fh.truncate(end);
      for (const [i, { task }] of items.entries()) {
        const rec = encodeRecord(task.id, masks[i]);
        const h = recordHeaderBytes(rec);
        await step('append:write-record-header');
        await writeAll(fh, rec.subarray(0, h), end);
        await step('append:write-record-payload');
        await writeAll(fh, rec.subarray(h), end + h);
        end += rec.length;
      }
      await step('append:fsync-masks');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await commitLogEntry(dir, state, { op: 'add', tasks: added, masksBytes: end }, step, options);
    return structuredClone(added);
  });
}

/**
 * The manifest `old` would become with `items` appended: every mask and entry checked as appendTasks
 * checks them (RangeError naming `where` on bad input). Writes nothing, so a caller can refuse bad input
 * before it reaches any other store.
 */
export function checkNewTasks(old: Manifest, items: { task: TaskSpec; mask: Uint32Array }[]): Manifest {
  return { ...old, tasks: [...old.tasks, ...newTaskEntries(old, new Map(old.tasks.map((t) => [t.id, t])), items)] };
}

/** The entries `items` become after `old` (records numbered on), each checked alone: O(items), whatever the task count. */
function newTaskEntries(old: Manifest, live: ReadonlyMap<string, TaskEntry>, items: { task: TaskSpec; mask: Uint32Array }[]): TaskEntry[] {
  const p = weightCount(old.architecture);
  const words = maskWords(old.architecture);
  const now = new Date().toISOString();
  let record = old.tasks.length + old.removed.length;
  const ids = new Set<string>();
  return items.map(({ task, mask }, i): TaskEntry => {
    if (!(mask instanceof Uint32Array) || mask.length !== words) {
      throw invalid(`task '${task.id}': a mask must be a Uint32Array of ${words} words (P = ${p})`);
    }
    const pad = paddingProblem(mask, p);
    if (pad) throw invalid(`task '${task.id}': mask has ${pad}`);
    if (live.has(task.id)) throw taskExists(task.id);
    if (ids.has(task.id)) throw invalid(`duplicate task id '${task.id}' (new task ${i})`);
    ids.add(task.id);
    const entry = {
      id: task.id,
      name: task.name,
      ...(task.description !== undefined ? { description: task.description } : {}),
      addedAt: task.addedAt ?? now,
      density: maskDensity(mask, p),
      record: record++,
      transform: task.transform,
    };
    return checkedInput(() =>
      validateTaskEntry(entry, `new task ${i}`, old.architecture.inputSize, (problem) => {
        throw new ModelFileError('new task', problem);
      }),
    );
  });
}

/**
 * Removes a task: durable (acknowledged) once its task log record is synced; its mask record becomes dead.
 * Then, when dead records exceed `compactAbove` of all records, compacts; if that fails the task stays
 * removed and the error says so.
 */
export async function removeTask(
  dir: string,
  taskId: string,
  options: StoreOptions = {},
): Promise<{ removed: RemovedRecord; compacted: boolean }> {
  return withModelWrite(dir, async () => {
    const state = await writableState(dir, options);
    const task = state.live.get(taskId);
    if (!task) throw taskNotFound(taskId);
    const removed: RemovedRecord = { id: task.id, record: task.record, removedAt: new Date().toISOString() };
    await commitLogEntry(dir, state, { op: 'remove', removed }, stepper(options.faults, 'remove'), options);
    const { manifest: next } = state;
    const dead = next.removed.length / (next.removed.length + next.tasks.length);
    if (!(dead > (options.compactAbove ?? DEFAULT_COMPACT_ABOVE))) return { removed, compacted: false };
    try {
      await compactUnlocked(dir, stepper(options.faults, 'compact'));
    } catch (e) {
      throw new Error(`task '${taskId}' was removed, but compacting ${dir} then failed: ${(e as Error).message}`, { cause: e });
    }
    return { removed, compacted: true };
  });
}

/** Sets (or, with undefined, clears) the model's own unknown-task threshold: one task log record. */
export async function setUnknownTaskThreshold(
  dir: string,
  threshold: UnknownTaskThreshold | undefined,
  options: StoreOptions = {},
): Promise<Manifest> {
  return withModelWrite(dir, async () => {
    const state = await writableState(dir, options);
    await commitLogEntry(dir, state, { op: 'threshold', unknownTask: threshold ? { ...threshold } : null }, stepper(options.faults, 'threshold'), options);
    return manifestCopy(state);
  });
}

/** The state to write to; a model written before the task log gets one first (a checkpoint: one manifest rewrite, once). */
async function writableState(dir: string, options: StoreOptions): Promise<ModelState> {
  const state = await currentState(dir);
  if (state.manifest.log) return state;
  await checkpointUnlocked(dir, stepper(options.faults, 'checkpoint'));
  return currentState(dir);
}

/**
 * Appends `entry` to the task log at the end of its valid prefix (cutting off a torn tail first) and syncs it:
 * the operation is acknowledged then. Schedules a background checkpoint once the log has outgrown the manifest.
 */
async function commitLogEntry(dir: string, state: ModelState, entry: LogEntry, step: StepFn, options: StoreOptions): Promise<void> {
  const rec = encodeLogRecord(entry);
  const fh = await open(path.join(dir, state.manifest.log!.file), 'r+');
  let synced;
  try {
    const half = rec.length >> 1;
    await step('log:truncate-tail');
    await fh.truncate(state.logEnd);
    await step('log:write-head');
    await writeAll(fh, rec.subarray(0, half), state.logEnd);
    await step('log:write-rest');
    await writeAll(fh, rec.subarray(half), state.logEnd + half);
    await step('log:fsync');
    await fh.sync();
    synced = await fh.stat({ bigint: true });
  } finally {
    await fh.close();
  }
  keepAppended(dir, state, entry, rec.length, synced);
  const logBytes = state.logEnd - LOG_HEADER_BYTES;
  if (logBytes > (options.checkpointAbove ?? DEFAULT_CHECKPOINT_ABOVE) && logBytes > state.manifestBytes) scheduleCheckpoint(dir);
}

const checkpointsDue = new Map<string, Promise<void>>();

/** A checkpoint after the writes queued now; a failure leaves the model as it was (the log still holds everything) and is reported as a process warning. */
function scheduleCheckpoint(dir: string): void {
  const key = path.resolve(dir);
  if (checkpointsDue.has(key)) return;
  const done = checkpointModel(dir).then(
    () => undefined,
    (e: Error) => process.emitWarning(`checkpointing the task log of ${dir} failed (nothing is lost: the log still holds every change): ${e.message}`),
  );
  checkpointsDue.set(key, done);
  void done.finally(() => checkpointsDue.delete(key));
}

/** Resolves when the background checkpoint of `dir` (if one is due) has finished. */
export async function checkpointsSettled(dir: string): Promise<void> {
  await checkpointsDue.get(path.resolve(dir));
}

/** Folds the task log into a new manifest.json and starts an empty log: O(tasks); run in the background by writers. */
export async function checkpointModel(dir: string, options: StoreOptions = {}): Promise<Manifest> {
  return withModelWrite(dir, async () => {
    await checkpointUnlocked(dir, stepper(options.faults, 'checkpoint'));
    return readManifest(dir);
  });
}

async function checkpointUnlocked(dir: string, step: StepFn): Promise<void> {
  const { manifest: old } = await currentState(dir);
  const log = { file: nextLogFile(old.log?.file), fileId: newFileId() };
  await writeFileDurably(path.join(dir, log.file), encodeLogHeader(log.fileId), step, 'checkpoint:write-log', 'checkpoint:fsync-log');
  await step('checkpoint:fsync-dir');
  await fsyncDir(dir);
  const next: Manifest = { ...old, log, tasks: [...old.tasks], removed: [...old.removed] };
  await keepRewritten(dir, next, await writeManifest(dir, next, step));
  await step('checkpoint:remove-old');
  await removeFilesExcept(dir, LOG_FILE_PATTERN, log.file);
}

/**
 * Files kept beside a model (training's log and transfer state), written under the directory's write lock
 * and durably: a replaced file is swapped in atomically, an appended line is on disk when this resolves.
 * The store never reads them and compaction leaves them alone.
 */
export async function replaceSideFile(dir: string, name: string, data: Uint8Array): Promise<void> {
  await withWriteLock(dir, () => replaceFileAtomically(dir, name, data, async () => undefined));
}

export async function appendToSideFile(dir: string, name: string, text: string): Promise<void> {
  await withWriteLock(dir, async () => {
    const file = path.join(dir, name);
    const created = !existsSync(file);
    const fh = await open(file, 'a');
    try {
      await fh.appendFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (created) await fsyncDir(dir);
  });
}

/** Rewrites the masks file with only the listed tasks (records renumbered), starts an empty task log, deletes stale files. */
export async function compactModel(dir: string, options: StoreOptions = {}): Promise<Manifest> {
  return withModelWrite(dir, () => compactUnlocked(dir, stepper(options.faults, 'compact')));
}

async function compactUnlocked(dir: string, step: StepFn): Promise<Manifest> {
  // Each live record is written out as it is verified, so a compaction holds ~1 MiB of masks, not all of them (at
  // k = 2500 they are 98 MB, which the old way held three times over). A failure leaves a partial file under the
  // new name, which nothing reads and the next compaction overwrites.
  const state = await currentState(dir);
  const file = nextMasksFile(state.manifest.masks.file);
  const fileId = newFileId();
  const records = new Map<string, number>();
  let old!: Manifest;
  const bytes = await writeFileDurably(
    path.join(dir, file),
    async (out) => {
      await out.write(encodeHeader({ ...state.manifest, fileId }));
      old = await verifiedModel(dir, state, (id, mask) => {
        records.set(id, records.size);
        return out.write(encodeRecord(id, mask));
      });
    },
    step,
    'compact:write-masks',
    'compact:fsync-masks',
  );
  const log = { file: nextLogFile(old.log?.file), fileId: newFileId() };
  await writeFileDurably(path.join(dir, log.file), encodeLogHeader(log.fileId), step, 'compact:write-log', 'compact:fsync-log');
  await step('compact:fsync-dir');
  await fsyncDir(dir);
  const next: Manifest = {
    ...old,
    masks: { file, fileId, bytes },
    log,
    tasks: old.tasks.map((t) => ({ ...t, record: records.get(t.id)! })),
    removed: [],
  };
  await keepRewritten(dir, next, await writeManifest(dir, next, step));
  await step('compact:remove-old');
  await removeFilesExcept(dir, MASKS_FILE_PATTERN, file);
  await removeFilesExcept(dir, LOG_FILE_PATTERN, log.file);
  return structuredClone(next);
}

/** Deletes the files of `dir` that match `pattern`, but `keep` (stale masks files or task logs after a switch). */
async function removeFilesExcept(dir: string, pattern: RegExp, keep: string): Promise<void> {
  for (const f of await readdir(dir)) {
    if (pattern.test(f) && f !== keep) await unlink(path.join(dir, f)).catch(() => undefined);
  }
}

/**
 * Reads the masks `state` commits and checks every record against it, a window at a time, handing each live task's
 * mask to `add` in record (= manifest) order: the file is never in memory whole, so a loader can put the masks
 * straight into its bank. A mask handed to `add` is a view of a buffer reused for the next window.
 */
async function verifiedModel(
  dir: string,
  state: ModelState,
  add: (id: string, mask: Uint32Array) => void | Promise<void>,
  countSetBits?: () => (id: string) => number,
): Promise<Manifest> {
  const manifest = manifestCopy(state);
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const file = path.join(dir, manifest.masks.file);
  const committed = manifest.masks.bytes;
  const p = weightCount(manifest.architecture);
  const words = maskWords(manifest.architecture);
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const checkDensity = (owner: TaskEntry, setBits: number) => {
    const density = setBits / p;
    if (Math.abs(density - owner.density) > 1e-9) {
      throw new ModelFileError(manifestFile, `task '${owner.id}': density ${owner.density} does not match its mask (${density})`);
    }
  };
  const added: TaskEntry[] = [];
  const owners: (TaskEntry | RemovedRecord)[] = [];
  for (const t of manifest.tasks) owners[t.record] = t;
  for (const d of manifest.removed) owners[d.record] = d;
  const fh = await openMasks(file, 'r');
  let seen = 0;
  try {
    const size = (await fh.stat()).size;
    const head = await readAt(fh, 0, Math.min(size, committed, MASKS_HEADER_BYTES));
    checkHeader(head, file, { ...manifest, fileId: manifest.masks.fileId });
    if (size < committed) throw truncatedError(file, committed, size);
    // One window buffer for the whole file (readRecords copies each mask out): fresh memory is paged in once, not per window.
    const window = Buffer.allocUnsafe(Math.min(committed, Math.max(MASK_WINDOW_BYTES, 2 * (RECORD_FIXED_BYTES + MAX_ID_BYTES + 4 * words))));
    // Likewise the window's masks, decoded into one array: no 39 KB allocation per task (98 MB of garbage at k = 2500).
    const windowMasks = new Uint32Array(Math.floor(window.length / (RECORD_FIXED_BYTES + 1 + 4 * words)) * words);
    for (let pos = MASKS_HEADER_BYTES; pos < committed; ) {
      const buf = await readAt(fh, pos, Math.min(window.length, committed - pos), window);
      const whole = wholeRecordsPrefix(buf, words);
      // No whole record left: the region ends inside one (readRecords says how).
      const records = readRecords(buf, file, 0, whole > 0 ? whole : buf.length, words, p, { index: seen, offset: pos }, windowMasks);
      if (records.length === 0) bad(`damaged record at byte ${pos}`);
      for (const r of records) {
        const owner = owners[r.index];
        if (!owner) bad(`record ${r.index} (task '${r.id}') is not listed in ${MANIFEST_FILE}, which accounts for ${owners.length} records`);
        if ('removedAt' in owner) {
          if (r.id !== owner.id) bad(`removed task '${owner.id}' in ${MANIFEST_FILE} refers to record ${r.index}, which holds task '${r.id}'`);
          continue;
        }
        if (r.id !== owner.id) bad(`task '${owner.id}' listed in ${MANIFEST_FILE} refers to record ${r.index}, which holds task '${r.id}'`);
        if (countSetBits) added.push(owner);
        else checkDensity(owner, popcount(r.mask));
        const adding = add(r.id, r.mask);
        if (adding) await adding; // a compaction writing the record out; a load's add returns nothing (no await per task)
      }
      seen += records.length;
      pos += whole > 0 ? whole : buf.length;
    }
  } finally {
    await fh.close();
  }
  if (countSetBits) {
    const setBits = countSetBits();
    for (const t of added) checkDensity(t, setBits(t.id));
  }
  for (const t of manifest.tasks) {
    if (t.record >= seen) bad(`task '${t.id}' listed in ${MANIFEST_FILE} is missing: it refers to record ${t.record}, the file commits ${seen}`);
  }
  for (const d of manifest.removed) {
    if (d.record >= seen) bad(`removed task '${d.id}' in ${MANIFEST_FILE} refers to record ${d.record}, the file commits ${seen}`);
  }
  return manifest;
}

/** How much of the masks file a load holds at once. */
const MASK_WINDOW_BYTES = 8 << 20;

/** `length` bytes at `position` (fewer at the end of the file), into `into` when given (its first `length` bytes). */
async function readAt(fh: FileHandle, position: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into ?? Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/**
 * Replaces manifest.json atomically; returns its size. Written a task at a time with the CRC carried along: at
 * k = 2500 permutation tasks the text is 10 MB, and formatting it whole, then parsing it back, cost ~380 MiB of RSS
 * at every checkpoint. Never a manifest this reader would reject: the fields besides the entries are validated here,
 * and every entry was validated as it came in (parseManifest, applyLogEntry, newTaskEntries).
 */
async function writeManifest(dir: string, manifest: Manifest, step: StepFn): Promise<number> {
  validateManifest({ ...manifest, tasks: [], removed: [] }, path.join(dir, MANIFEST_FILE));
  let crc = 0;
  let bytes = 0;
  function* pieces(): Generator<Uint8Array> {
    for (const text of manifestPieces(manifest)) {
      const piece = Buffer.from(text, 'utf8');
      crc = crc32(piece, crc);
      bytes += piece.length;
      yield piece;
    }
    const line = checksumLine(crc);
    bytes += line.length;
    yield line;
  }
  await replaceFileAtomically(dir, MANIFEST_FILE, pieces(), step);
  return bytes;
}

async function openMasks(file: string, flags: 'r' | 'r+') {
  try {
    return await open(file, flags);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelFileError(file, `missing: ${MANIFEST_FILE} names it but it does not exist`);
    }
    throw new ModelFileError(file, `cannot be opened: ${(e as Error).message}`, { cause: e });
  }
}

function truncatedError(file: string, committed: number, size: number): ModelFileError {
  return new ModelFileError(file, `truncated: ${MANIFEST_FILE} commits ${committed} bytes but the file has only ${size}`);
}

/** masks.bin → masks.1.bin → masks.2.bin … */
function nextMasksFile(current: string): string {
  const m = /^masks(?:\.(\d+))?\.bin$/.exec(current);
  return `masks.${(m?.[1] ? Number(m[1]) : 0) + 1}.bin`;
}

/** (none) → tasks.log → tasks.1.log → tasks.2.log … */
function nextLogFile(current: string | undefined): string {
  if (current === undefined) return 'tasks.log';
  const m = /^tasks(?:\.(\d+))?\.log$/.exec(current);
  return `tasks.${(m?.[1] ? Number(m[1]) : 0) + 1}.log`;
}

/** Input problems found by the manifest validator are the caller's mistake (invalid_argument), not a damaged file. */
function checkedInput<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ModelFileError) throw invalid(`invalid ${e.file}: ${e.problem}`);
    throw e;
  }
}

const writeQueues = new Map<string, Promise<void>>();

/** withWriteLock for the model's own files: a write that fails part-way leaves nothing kept in memory about the directory. */
function withModelWrite<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  return withWriteLock(dir, async () => {
    try {
      return await fn();
    } catch (e) {
      forgetState(dir);
      throw e;
    }
  });
}

/** Runs `fn` after every earlier write to the same directory (by resolved path) has settled. */
export async function withWriteLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(dir);
  const run = (writeQueues.get(key) ?? Promise.resolve()).then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  writeQueues.set(key, tail);
  try {
    return await run;
  } finally {
    if (writeQueues.get(key) === tail) writeQueues.delete(key);
  }
}
