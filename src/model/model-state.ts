// What a model directory holds now: manifest.json with its task log applied (docs/model-format.md §4a), read
// and verified once, then kept in memory per directory so a write costs O(1) in the task count instead of a
// parse of the whole manifest. The copy is trusted only while both files are the very ones it was read from
// (inode, size, change times: the "stamp"); any other writer, a hand edit or a crash makes it read again.
import type { BigIntStats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFileError } from './errors.ts';
import { MANIFEST_FILE, type Manifest, type TaskEntry, parseManifest } from './manifest.ts';
import { LOG_HEADER_BYTES, type LogEntry, applyLogEntry, readLog } from './task-log.ts';

export interface ModelState {
  /** The manifest with every log record applied (masks.bytes = the committed length after the last add). */
  manifest: Manifest;
  /** manifest.tasks by id. */
  live: Map<string, TaskEntry>;
  /** Length of the log's valid prefix: where the next record goes (0 without a log). */
  logEnd: number;
  /** Size of manifest.json: a checkpoint is due once the log outgrows it. */
  manifestBytes: number;
  manifestStamp: string;
  logStamp: string;
}

const states = new Map<string, ModelState>();
const MISSING = 'missing';

function stampOf(s: BigIntStats | undefined): string {
  return s ? `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}` : MISSING;
}

const statStamp = (file: string) => stat(file, { bigint: true }).then(stampOf, () => MISSING);

/** The current state of `dir`: the kept copy when both files are unchanged, else read and verified afresh (and kept). */
export async function currentState(dir: string): Promise<ModelState> {
  const key = path.resolve(dir);
  const kept = states.get(key);
  if (kept) {
    const [m, l] = await Promise.all([statStamp(path.join(dir, MANIFEST_FILE)), kept.manifest.log ? statStamp(path.join(dir, kept.manifest.log.file)) : MISSING]);
    if (m === kept.manifestStamp && l === kept.logStamp) return kept;
  }
  const fresh = await readState(dir);
  states.set(key, fresh);
  return fresh;
}

/** A copy a caller may change freely (the kept state is shared). */
export function manifestCopy(state: ModelState): Manifest {
  const { manifest: m } = state;
  return { ...m, masks: { ...m.masks }, ...(m.log ? { log: { ...m.log } } : {}), tasks: [...m.tasks], removed: [...m.removed] };
}

/** After a write failed part-way, nothing kept about `dir` is trusted. */
export function forgetState(dir: string): void {
  states.delete(path.resolve(dir));
}

/** After this process replaced the manifest (with an empty log): keep the new state without reading it back. */
export async function keepRewritten(dir: string, manifest: Manifest, manifestBytes: number): Promise<void> {
  const [manifestStamp, logStamp] = await Promise.all([
    statStamp(path.join(dir, MANIFEST_FILE)),
    manifest.log ? statStamp(path.join(dir, manifest.log.file)) : MISSING,
  ]);
  const live = new Map(manifest.tasks.map((t) => [t.id, t]));
  states.set(path.resolve(dir), { manifest, live, logEnd: manifest.log ? LOG_HEADER_BYTES : 0, manifestBytes, manifestStamp, logStamp });
}

/** After this process appended `entry` (of `bytes` bytes) to the log and synced it: apply it to the kept state. */
export function keepAppended(dir: string, state: ModelState, entry: LogEntry, bytes: number, logStats: BigIntStats): void {
  const log = path.join(dir, state.manifest.log!.file);
  applyLogEntry(state.manifest, state.live, entry, log, 'new record');
  state.logEnd += bytes;
  state.logStamp = stampOf(logStats);
  states.set(path.resolve(dir), state);
}

/** Reads manifest.json and its log and applies the log; a load racing a checkpoint (which deletes the old log) reads again. */
export async function readState(dir: string): Promise<ModelState> {
  const manifestFile = path.join(dir, MANIFEST_FILE);
  for (let attempt = 0; ; attempt++) {
    const m = await readStamped(manifestFile, 'this directory holds no model');
    const manifest = parseManifest(m.bytes, manifestFile);
    const live = new Map(manifest.tasks.map((t) => [t.id, t]));
    const state = { manifest, live, logEnd: 0, manifestBytes: m.bytes.length, manifestStamp: m.stamp, logStamp: MISSING };
    if (!manifest.log) return state;
    const logFile = path.join(dir, manifest.log.file);
    let log: { bytes: Buffer; stamp: string };
    try {
      log = await readStamped(logFile, `${MANIFEST_FILE} names it but it does not exist`);
    } catch (e) {
      if (attempt < 3 && (await statStamp(manifestFile)) !== m.stamp) continue;
      throw e;
    }
    const { entries, end } = readLog(log.bytes, logFile, manifest.log.fileId);
    entries.forEach((v, i) => applyLogEntry(manifest, live, v, logFile, `record ${i}`));
    return { ...state, logEnd: end, logStamp: log.stamp };
  }
}

/** A file's bytes and the stamp of exactly those bytes (read through one handle, up to the size it had then). */
async function readStamped(file: string, missing: string): Promise<{ bytes: Buffer; stamp: string }> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelFileError(file, `missing: ${missing}`);
    throw new ModelFileError(file, `cannot be read: ${(e as Error).message}`, { cause: e });
  }
  try {
    const s = await fh.stat({ bigint: true });
    const bytes = Buffer.alloc(Number(s.size));
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await fh.read(bytes, got, bytes.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { bytes: bytes.subarray(0, got), stamp: stampOf(s) };
  } finally {
    await fh.close();
  }
}
