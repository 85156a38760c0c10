// Durable file primitives and the named points between write steps where a crash can happen.
// A FaultHook is called (and awaited) just before each step; throwing from it stops the operation
// there, leaving on disk exactly what a process crash at that instant would leave. Tests use it to
// check every intermediate state; production passes none.
import { type FileHandle, open, rename } from 'node:fs/promises';
import * as path from 'node:path';

export type WriteOp = 'create' | 'append' | 'remove' | 'compact' | 'threshold' | 'checkpoint' | 'reservoir';

export const MANIFEST_STEPS = ['manifest:write-temp', 'manifest:fsync-temp', 'manifest:rename', 'manifest:fsync-dir'] as const;
/** One task log record (task-log.ts), written in two halves so that a crash between them leaves a real torn record. */
export const LOG_STEPS = ['log:truncate-tail', 'log:write-head', 'log:write-rest', 'log:fsync'] as const;

/**
 * Every step of every write operation, in order. remove = one log record (then, maybe, a compaction); threshold =
 * one log record. A model written before the task log gets a checkpoint (which creates the log) before its first change.
 */
export const WRITE_STEPS = {
  create: ['create:write-masks', 'create:fsync-masks', 'create:write-log', 'create:fsync-log', 'create:fsync-dir', ...MANIFEST_STEPS],
  append: ['append:truncate-tail', 'append:write-record-header', 'append:write-record-payload', 'append:fsync-masks', ...LOG_STEPS],
  remove: [...LOG_STEPS],
  threshold: [...LOG_STEPS],
  compact: [
    'compact:write-masks',
    'compact:fsync-masks',
    'compact:write-log',
    'compact:fsync-log',
    'compact:fsync-dir',
    ...MANIFEST_STEPS,
    'compact:remove-old',
  ],
  /** Folds the task log into a new manifest and starts an empty log (run in the background when the log grows). */
  checkpoint: ['checkpoint:write-log', 'checkpoint:fsync-log', 'checkpoint:fsync-dir', ...MANIFEST_STEPS, 'checkpoint:remove-old'],
  /** A HopSupSup model's whole reservoir file, replaced on every change (src/model/hopfield-model.ts). */
  reservoir: ['reservoir:write', 'reservoir:fsync', 'reservoir:fsync-dir', ...MANIFEST_STEPS, 'reservoir:remove-old'],
} as const;

export type WriteStep = (typeof WRITE_STEPS)[WriteOp][number];

export type FaultHook = (step: WriteStep, op: WriteOp) => void | Promise<void>;

/** The step callback an operation calls; a no-op without a hook. */
export type StepFn = (step: WriteStep) => Promise<void>;

export function stepper(hook: FaultHook | undefined, op: WriteOp): StepFn {
  return async (step) => {
    if (hook) await hook(step, op);
  };
}

/** Writes all of `data` at `position` (fs writes may be partial). */
export async function writeAll(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** fsync a directory so that entries created, renamed or removed in it are durable (no-op where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Windows cannot open or fsync a directory; its renames are durable once they return.
    if (process.platform !== 'win32') throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * What a durable write takes: the bytes; or their pieces in order; or a producer that writes its pieces as it makes
 * them (a compaction, record by record as it verifies them). Pieces go out ~1 MiB at a time, never joined whole.
 */
export type FileData = Uint8Array | Iterable<Uint8Array> | ((out: SequentialWriter) => Promise<void>);

const WRITE_BATCH_BYTES = 1 << 20;

/**
 * Writes pieces one after another from offset 0, joined into writes of ~1 MiB: the whole is never held at once
 * (a compaction streams a masks file of any size through it). `end` writes what is left.
 */
class SequentialWriter {
  private batch: Uint8Array[] = [];
  private batched = 0;
  private position = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(piece: Uint8Array): Promise<void> {
    this.batch.push(piece);
    this.batched += piece.length;
    if (this.batched >= WRITE_BATCH_BYTES) await this.flush();
  }

  /** Writes the rest; resolves to the bytes written in all. */
  async end(): Promise<number> {
    if (this.batched > 0) await this.flush();
    return this.position;
  }

  private async flush(): Promise<void> {
    await writeAll(this.fh, this.batch.length === 1 ? this.batch[0] : Buffer.concat(this.batch, this.batched), this.position);
    this.position += this.batched;
    this.batch = [];
    this.batched = 0;
  }
}

/** Writes `data` from offset 0; resolves to the bytes written. */
async function writeData(fh: FileHandle, data: FileData): Promise<number> {
  if (data instanceof Uint8Array) {
    await writeAll(fh, data, 0);
    return data.length;
  }
  const out = new SequentialWriter(fh);
  if (typeof data === 'function') await data(out);
  else for (const piece of data) await out.write(piece);
  return out.end();
}

/**
 * Creates or truncates `file`, writes `data`, fsyncs it; resolves to the bytes written. Steps: `writeStep` before
 * writing, `syncStep` before fsync.
 */
export async function writeFileDurably(file: string, data: FileData, step: StepFn, writeStep: WriteStep, syncStep: WriteStep): Promise<number> {
  await step(writeStep);
  const fh = await open(file, 'w');
  try {
    const bytes = await writeData(fh, data);
    await step(syncStep);
    await fh.sync();
    return bytes;
  } finally {
    await fh.close();
  }
}

/**
 * Replaces dir/name atomically: write dir/name.tmp, fsync it, rename it over dir/name, fsync dir.
 * A crash leaves either the old file or the new one at dir/name, never a mix; a stale .tmp is harmless
 * (nothing reads it, and the next replace truncates it).
 */
export async function replaceFileAtomically(dir: string, name: string, data: FileData, step: StepFn): Promise<void> {
  const tmp = path.join(dir, `${name}.tmp`);
  await writeFileDurably(tmp, data, step, 'manifest:write-temp', 'manifest:fsync-temp');
  await step('manifest:rename');
  await rename(tmp, path.join(dir, name));
  await step('manifest:fsync-dir');
  await fsyncDir(dir);
}
