// A model directory on disk: manifest.json + a masks file (docs/model-format.md). All file I/O of the
// project's models lives here.
//
// Durability (details in docs/model-format.md, "Durability rules"):
// - manifest.json is the source of truth; it is only ever replaced atomically (temp, fsync, rename, fsync dir).
// - The masks file is append-only. Its first `manifest.masks.bytes` bytes (the committed region) hold the
//   header and exactly one record per listed or removed task; bytes past that are ignored (a torn or
//   unacknowledged append) and are cut off by the next append.
// - A record is fsynced before the manifest that commits it is renamed into place; an operation resolves
//   only after the new manifest and its directory entry are durable.
// - Compaction writes a new masks file under a new name (masks.<n>.bin), fsyncs it and the directory,
//   then switches the manifest to it, then deletes the old file.
//
// Concurrency: one writer per directory. Writes from this process to one directory are serialised by an
// in-process queue keyed by the resolved path; no lock protects against a second writing process.
// Readers (loadModel) take no lock and may run while a write is in progress: they see the old or new state.
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { invalid, taskExists, taskNotFound } from '../contract/errors.ts';
import type { ModelSpec } from '../contract/model.ts';
import type { TaskSpec } from '../contract/task.ts';
import { maskWords, weightCount } from '../core/architecture.ts';
import { maskDensity } from '../core/mask-bank.ts';
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
import { ModelFileError } from './errors.ts';
import {
  MASKS_FILE_PATTERN,
  MANIFEST_FILE,
  type Manifest,
  type RemovedRecord,
  type TaskEntry,
  type UnknownTaskThreshold,
  parseManifest,
  serializeManifest,
  validateManifest,
} from './manifest.ts';
import {
  MASKS_HEADER_BYTES,
  checkHeader,
  encodeHeader,
  encodeRecord,
  newFileId,
  paddingProblem,
  readRecords,
  recordHeaderBytes,
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
}

export const DEFAULT_COMPACT_ABOVE = 0.5;

/** Whether `dir` holds a model (its manifest exists; whether it is intact is loadModel's question). */
export function hasModel(dir: string): boolean {
  return existsSync(path.join(dir, MANIFEST_FILE));
}

/** Reads and fully verifies a model: manifest, masks header, every committed record, and their agreement. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  // A concurrent compaction may delete the masks file an older manifest names: if loading fails and the
  // manifest has changed meanwhile, load again from the new one.
  for (let attempt = 0; ; attempt++) {
    const bytes = await readManifestBytes(dir);
    try {
      return await loadFrom(dir, bytes);
    } catch (e) {
      const now = await readFile(path.join(dir, MANIFEST_FILE)).catch(() => undefined);
      if (attempt >= 3 || !now || now.equals(bytes)) throw e;
    }
  }
}

/** The verified manifest alone (cheap: does not read the masks). */
export async function readManifest(dir: string): Promise<Manifest> {
  return parseManifest(await readManifestBytes(dir), path.join(dir, MANIFEST_FILE));
}

/** Creates a model with no tasks. Refuses a directory that already holds a model or other files. */
export async function createModel(dir: string, init: ModelInit, options: StoreOptions = {}): Promise<Manifest> {
  return withWriteLock(dir, async () => {
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
    const stray = (await readdir(dir)).filter((f) => !MASKS_FILE_PATTERN.test(f) && f !== `${MANIFEST_FILE}.tmp`);
    if (stray.includes(MANIFEST_FILE)) throw new Error(`${dir} already holds a model (${MANIFEST_FILE} exists)`);
    if (stray.length > 0) throw new Error(`${dir} is not empty (${stray.slice(0, 3).join(', ')}): a model needs a directory of its own`);
    const header = encodeHeader({ ...manifest, fileId: manifest.masks.fileId });
    await writeFileDurably(path.join(dir, manifest.masks.file), header, step, 'create:write-masks', 'create:fsync-masks');
    await step('create:fsync-dir');
    await fsyncDir(dir);
    await writeManifest(dir, manifest, step);
    return manifest;
  });
}

/** Appends one task; resolves when it is durable (acknowledged). */
export async function appendTask(dir: string, task: TaskSpec, mask: Uint32Array, options: StoreOptions = {}): Promise<TaskEntry> {
  return (await appendTasks(dir, [{ task, mask }], options))[0];
}

/** Appends several tasks with one fsync and one manifest rewrite; all or none become visible. */
export async function appendTasks(
  dir: string,
  items: { task: TaskSpec; mask: Uint32Array }[],
  options: StoreOptions = {},
): Promise<TaskEntry[]> {
  return withWriteLock(dir, async () => {
    const step = stepper(options.faults, 'append');
    const old = await readManifest(dir);
    const next = checkNewTasks(old, items);
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
    next.masks.bytes = end;
    await writeManifest(dir, next, step);
    return next.tasks.slice(old.tasks.length);
  });
}

/**
 * The manifest `old` would become with `items` appended: every mask and entry checked as appendTasks
 * checks them (RangeError naming `where` on bad input). Writes nothing, so a caller can refuse bad input
 * before it reaches any other store.
 */
export function checkNewTasks(old: Manifest, items: { task: TaskSpec; mask: Uint32Array }[]): Manifest {
  const p = weightCount(old.architecture);
  const words = maskWords(old.architecture);
  const now = new Date().toISOString();
  let record = old.tasks.length + old.removed.length;
  const added = items.map(({ task, mask }): TaskEntry => {
    if (!(mask instanceof Uint32Array) || mask.length !== words) {
      throw invalid(`task '${task.id}': a mask must be a Uint32Array of ${words} words (P = ${p})`);
    }
    const pad = paddingProblem(mask, p);
    if (pad) throw invalid(`task '${task.id}': mask has ${pad}`);
    if (old.tasks.some((t) => t.id === task.id)) throw taskExists(task.id);
    return {
      id: task.id,
      name: task.name,
      ...(task.description !== undefined ? { description: task.description } : {}),
      addedAt: task.addedAt ?? now,
      density: maskDensity(mask, p),
      record: record++,
      transform: task.transform,
    };
  });
  return checkedInput(() => validateManifest({ ...old, tasks: [...old.tasks, ...added] }, 'new task'));
}

/**
 * Removes a task: durable (acknowledged) once the new manifest is in place; its record becomes dead.
 * Then, when dead records exceed `compactAbove` of all records, compacts; if that fails the task stays
 * removed and the error says so.
 */
export async function removeTask(
  dir: string,
  taskId: string,
  options: StoreOptions = {},
): Promise<{ removed: RemovedRecord; compacted: boolean }> {
  return withWriteLock(dir, async () => {
    const old = await readManifest(dir);
    const task = old.tasks.find((t) => t.id === taskId);
    if (!task) throw taskNotFound(taskId);
    const removed: RemovedRecord = { id: task.id, record: task.record, removedAt: new Date().toISOString() };
    const next: Manifest = { ...old, tasks: old.tasks.filter((t) => t !== task), removed: [...old.removed, removed] };
    await writeManifest(dir, next, stepper(options.faults, 'remove'));
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

/** Sets (or, with undefined, clears) the model's own unknown-task threshold: one atomic manifest replace. */
export async function setUnknownTaskThreshold(
  dir: string,
  threshold: UnknownTaskThreshold | undefined,
  options: StoreOptions = {},
): Promise<Manifest> {
  return withWriteLock(dir, async () => {
    const { unknownTask: _old, ...rest } = await readManifest(dir);
    const next: Manifest = threshold ? { ...rest, unknownTask: { ...threshold } } : rest;
    await writeManifest(dir, next, stepper(options.faults, 'threshold'));
    return next;
  });
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

/** Rewrites the masks file with only the listed tasks (records renumbered) and deletes stale masks files. */
export async function compactModel(dir: string, options: StoreOptions = {}): Promise<Manifest> {
  return withWriteLock(dir, () => compactUnlocked(dir, stepper(options.faults, 'compact')));
}

async function compactUnlocked(dir: string, step: StepFn): Promise<Manifest> {
  const { manifest: old, masks } = await loadFrom(dir, await readManifestBytes(dir));
  const file = nextMasksFile(old.masks.file);
  const fileId = newFileId();
  const parts = [encodeHeader({ ...old, fileId }), ...old.tasks.map((t) => encodeRecord(t.id, masks.get(t.id)!))];
  const data = Buffer.concat(parts);
  await writeFileDurably(path.join(dir, file), data, step, 'compact:write-masks', 'compact:fsync-masks');
  await step('compact:fsync-dir');
  await fsyncDir(dir);
  const next: Manifest = {
    ...old,
    masks: { file, fileId, bytes: data.length },
    tasks: old.tasks.map((t, i) => ({ ...t, record: i })),
    removed: [],
  };
  await writeManifest(dir, next, step);
  await step('compact:remove-old');
  for (const f of await readdir(dir)) {
    if (MASKS_FILE_PATTERN.test(f) && f !== file) await unlink(path.join(dir, f)).catch(() => undefined);
  }
  return next;
}

async function loadFrom(dir: string, manifestBytes: Buffer): Promise<LoadedModel> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  const manifest = parseManifest(manifestBytes, manifestFile);
  const file = path.join(dir, manifest.masks.file);
  const committed = manifest.masks.bytes;
  const fh = await openMasks(file, 'r');
  let buf: Buffer;
  try {
    const size = (await fh.stat()).size;
    buf = Buffer.alloc(Math.min(size, committed));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    buf = buf.subarray(0, got);
  } finally {
    await fh.close();
  }
  checkHeader(buf, file, { ...manifest, fileId: manifest.masks.fileId });
  if (buf.length < committed) throw truncatedError(file, committed, buf.length);

  const p = weightCount(manifest.architecture);
  const records = readRecords(buf, file, MASKS_HEADER_BYTES, committed, maskWords(manifest.architecture), p);
  const expected = manifest.tasks.length + manifest.removed.length;
  const bad = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  if (records.length > expected) {
    const r = records[expected];
    bad(`record ${r.index} (task '${r.id}') is not listed in ${MANIFEST_FILE}, which accounts for ${expected} records`);
  }
  const masks = new Map<string, Uint32Array>();
  for (const t of manifest.tasks) {
    const r = records[t.record];
    if (!r) bad(`task '${t.id}' listed in ${MANIFEST_FILE} is missing: it refers to record ${t.record}, the file commits ${records.length}`);
    if (r.id !== t.id) bad(`task '${t.id}' listed in ${MANIFEST_FILE} refers to record ${t.record}, which holds task '${r.id}'`);
    const density = maskDensity(r.mask, p);
    if (Math.abs(density - t.density) > 1e-9) {
      throw new ModelFileError(manifestFile, `task '${t.id}': density ${t.density} does not match its mask (${density})`);
    }
    masks.set(t.id, r.mask);
  }
  for (const d of manifest.removed) {
    const r = records[d.record];
    if (!r) bad(`removed task '${d.id}' in ${MANIFEST_FILE} refers to record ${d.record}, the file commits ${records.length}`);
    if (r.id !== d.id) bad(`removed task '${d.id}' in ${MANIFEST_FILE} refers to record ${d.record}, which holds task '${r.id}'`);
  }
  return { manifest, masks };
}

async function writeManifest(dir: string, manifest: Manifest, step: StepFn): Promise<void> {
  const data = serializeManifest(manifest);
  parseManifest(data, path.join(dir, MANIFEST_FILE)); // never write a manifest this reader would reject
  await replaceFileAtomically(dir, MANIFEST_FILE, data, step);
}

async function readManifestBytes(dir: string): Promise<Buffer> {
  const file = path.join(dir, MANIFEST_FILE);
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFileError(file, 'missing: this directory holds no model');
    throw new ModelFileError(file, `cannot be read: ${(e as Error).message}`, { cause: e });
  }
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
