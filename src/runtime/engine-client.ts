import { Worker } from 'node:worker_threads';
import { SupsupError } from '../contract/errors.ts';
import type { WorkerReply, WorkerRequest, WorkerResults } from './worker-protocol.ts';

const BOOT = new URL('./worker-boot.mjs', import.meta.url);
const ENTRY = new URL('./engine-worker.ts', import.meta.url);
/** Compiled (lib/, where bin/build-js.mjs made ENTRY a .js file) the worker starts straight from it; as TypeScript through worker-boot's tsx. */
const startWorker = () => (ENTRY.pathname.endsWith('.js') ? new Worker(ENTRY) : new Worker(BOOT, { workerData: { entry: ENTRY.href } }));

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * The main thread's handle on the engine worker: request/reply by sequence number over postMessage. If the worker dies,
 * every pending request fails with `unavailable` and `onExit` is told, so the runtime can start a new one; a request
 * made after that fails at once (a dead worker never answers, and its caller would wait forever).
 */
export class EngineClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 1;
  private stopping = false;
  private exitCode: number | undefined;
  /** Live tfjs tensors in the worker, as of its last reply. */
  tensors = 0;

  constructor(onExit: (code: number) => void) {
    this.worker = startWorker();
    this.worker.on('message', (reply: WorkerReply) => this.settle(reply));
    this.worker.on('error', () => undefined); // 'exit' follows and does the cleanup
    this.worker.on('exit', (code) => {
      this.exitCode = code;
      this.failAll(stopped(code));
      if (!this.stopping) onExit(code);
    });
  }

  request<K extends WorkerRequest['op']>(req: Extract<WorkerRequest, { op: K }>, transfer: ArrayBuffer[] = []): Promise<WorkerResults[K]> {
    if (this.exitCode !== undefined) return Promise.reject(stopped(this.exitCode));
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, seq }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.stopping = true;
    await this.worker.terminate();
  }

  private settle(reply: WorkerReply): void {
    this.tensors = reply.tensors;
    const p = this.pending.get(reply.seq);
    if (!p) return;
    this.pending.delete(reply.seq);
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new SupsupError(reply.error.code, reply.error.message));
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}

function stopped(code: number): SupsupError {
  return new SupsupError('unavailable', `the engine worker stopped (exit code ${code})`);
}
