// A bounded queue with dynamic batching in front of the single engine worker. One pass runs at a time;
// while it runs, requests queue up, and the next pass takes the oldest request together with every queued
// request that may merge with it (merge.ts), up to `maxBatch` examples. With `maxWaitMs` > 0 a mergeable
// group that is not full waits that long after its first request arrived for more company.
// A full queue refuses at once (resource_exhausted); a request past its deadline fails with
// deadline_exceeded whether it is still queued (it is dropped) or running (its answer is discarded).
import { performance } from 'node:perf_hooks';
import type { ClassifyCall, Prediction } from '../contract/classify.ts';
import { SupsupError } from '../contract/errors.ts';
import { mergeCalls, mergeKey, splitPredictions } from './merge.ts';

export const queueFull = (maxQueue: number) => new SupsupError('resource_exhausted', `the server is busy: ${maxQueue} requests are already waiting; retry later`);

export interface BatcherOptions {
  maxBatch: number;
  maxQueue: number;
  maxWaitMs: number;
}

export interface BatchObserver {
  queueWait(seconds: number): void;
  batch(examples: number): void;
}

/** What a caller may learn of the pass that served its call (for per-model statistics), filled in when it ran. */
export interface PassTiming {
  /** Which pass (a counter): calls merged into one pass share it. */
  pass: number;
  /** Examples in the pass, this call's and those merged with it. */
  examples: number;
  queueMs: number;
  computeMs: number;
}

interface Job {
  call: ClassifyCall;
  timing?: PassTiming;
  key: string | null;
  enqueuedAt: number;
  timeoutMs: number;
  state: 'queued' | 'running' | 'done';
  timer?: NodeJS.Timeout;
  resolve: (p: Prediction[]) => void;
  reject: (e: Error) => void;
}

export class Batcher {
  private queue: Job[] = [];
  private busy = false;
  private runningJobs = 0;
  private waitTimer: NodeJS.Timeout | undefined;
  private flushing = false;
  private idleWaiters: (() => void)[] = [];
  private passes = 0;

  constructor(
    private readonly options: BatcherOptions,
    private readonly run: (call: ClassifyCall) => Promise<Prediction[]>,
    private readonly observer?: BatchObserver,
  ) {}

  /** Requests waiting (not counting the pass that runs). */
  get depth(): number {
    return this.queue.length;
  }

  /** Requests in the pass that runs now. */
  get running(): number {
    return this.runningJobs;
  }

  /** Throws resource_exhausted at once when the queue is full; otherwise resolves with the call's predictions (and fills `timing`, when given). */
  submit(call: ClassifyCall, timeoutMs: number, timing?: PassTiming): Promise<Prediction[]> {
    if (this.queue.length >= this.options.maxQueue) {
      throw queueFull(this.options.maxQueue);
    }
    return new Promise((resolve, reject) => {
      const job: Job = { call, timing, key: mergeKey(call), enqueuedAt: performance.now(), timeoutMs, state: 'queued', resolve, reject };
      job.timer = setTimeout(() => this.expire(job), timeoutMs);
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stop waiting for company: everything queued runs as soon as the engine is free (used when draining). */
  flush(): void {
    this.flushing = true;
    this.pump();
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    if (this.busy) return;
    clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    if (this.queue.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const head = this.queue[0];
    const group = this.groupFor(head);
    const examples = group.reduce((n, j) => n + j.call.batch, 0);
    if (head.key !== null && examples < this.options.maxBatch && !this.flushing) {
      const left = head.enqueuedAt + this.options.maxWaitMs - performance.now();
      if (left > 0) {
        this.waitTimer = setTimeout(() => this.pump(), Math.ceil(left));
        return;
      }
    }
    const taken = new Set(group);
    this.queue = this.queue.filter((j) => !taken.has(j));
    this.busy = true;
    this.runningJobs = group.length;
    void this.dispatch(group).finally(() => {
      this.busy = false;
      this.runningJobs = 0;
      this.pump();
    });
  }

  /** The head and, if it may merge, every later queued job with its key that still fits, oldest first. */
  private groupFor(head: Job): Job[] {
    const group = [head];
    if (head.key === null) return group;
    let examples = head.call.batch;
    for (let i = 1; i < this.queue.length; i++) {
      const j = this.queue[i];
      if (j.key === head.key && examples + j.call.batch <= this.options.maxBatch) {
        group.push(j);
        examples += j.call.batch;
      }
    }
    return group;
  }

  /** A number for a pass, unique among this batcher's (the runtime's inline passes take theirs here too). */
  newPass(): number {
    return ++this.passes;
  }

  private async dispatch(group: Job[]): Promise<void> {
    const now = performance.now();
    for (const j of group) {
      j.state = 'running';
      this.observer?.queueWait((now - j.enqueuedAt) / 1000);
    }
    const calls = group.map((j) => j.call);
    const merged = mergeCalls(calls);
    this.observer?.batch(merged.batch);
    const pass = this.newPass();
    try {
      const predictions = await this.run(merged);
      const computeMs = performance.now() - now;
      for (const j of group) if (j.timing) Object.assign(j.timing, { pass, examples: merged.batch, queueMs: now - j.enqueuedAt, computeMs });
      const parts = splitPredictions(predictions, calls);
      group.forEach((j, i) => this.settle(j, () => j.resolve(parts[i])));
    } catch (e) {
      for (const j of group) this.settle(j, () => j.reject(e as Error));
    }
  }

  private settle(job: Job, fn: () => void): void {
    if (job.state === 'done') return;
    job.state = 'done';
    clearTimeout(job.timer);
    fn();
  }

  private expire(job: Job): void {
    if (job.state === 'queued') {
      this.queue = this.queue.filter((j) => j !== job);
      if (!this.busy && this.queue.length === 0) this.pump();
    }
    this.settle(job, () => job.reject(new SupsupError('deadline_exceeded', `the request did not finish within its deadline of ${job.timeoutMs} ms`)));
  }
}
