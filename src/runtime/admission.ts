// Admission to the engine's queue, for the protocol adapters to ask before they read a request's body.
// At most `maxQueue` admitted requests wait (being read, decoded, or queued; those in the running pass do not
// count). A request that finds the queue full waits unread, up to `waitMs`, for a place, first come first served:
// its body stays in the socket (TCP backpressure), so a parked request costs neither CPU nor memory here, and
// clients that retry at once, ignoring Retry-After, are paced by the server instead of spinning through refusals
// that take CPU from the engine. Past `waitMs` (or at once when it is 0) it is refused with resource_exhausted.
import { queueFull } from './batcher.ts';

export interface AdmissionOptions {
  maxQueue: number;
  /** How long a request waits for a place when the queue is full before it is refused (0: refused at once). */
  waitMs: number;
}

interface Waiter {
  admit: () => void;
  timer: NodeJS.Timeout;
}

export class Admission {
  /** Admitted and not yet released. */
  private admitted = 0;
  private readonly waiters: Waiter[] = [];

  /** `running`: how many admitted requests are in the pass that runs now (they no longer hold a place). */
  constructor(
    private readonly options: AdmissionOptions,
    private readonly running: () => number,
  ) {}

  /** Requests waiting for a place. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves with the release (call it once the request is answered or its client went away) when a place is
   * free, now or within `waitMs`; rejects with resource_exhausted when none came, or at once when `signal` aborts
   * (the client went away) while waiting. `check` runs again when a waiter is admitted (the engine may have gone away meanwhile).
   */
  enter(signal?: AbortSignal, check?: () => void): Promise<() => void> {
    if (this.hasPlace() && this.waiters.length === 0) return Promise.resolve(this.take());
    if (this.options.waitMs === 0) return Promise.reject(queueFull(this.options.maxQueue));
    return new Promise((resolve, reject) => {
      const leave = (e: Error) => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        clearTimeout(waiter.timer);
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      };
      const onAbort = () => leave(queueFull(this.options.maxQueue)); // its client went away: the refusal reaches no one, and is no server fault
      const waiter: Waiter = {
        timer: setTimeout(() => leave(queueFull(this.options.maxQueue)), this.options.waitMs),
        admit: () => {
          clearTimeout(waiter.timer);
          signal?.removeEventListener('abort', onAbort);
          try {
            check?.();
          } catch (e) {
            reject(e as Error);
            return;
          }
          resolve(this.take());
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** A place may have come free (a release, or a pass started): admits waiters, oldest first, while places last. */
  wake(): void {
    while (this.waiters.length > 0 && this.hasPlace()) this.waiters.shift()!.admit();
  }

  private hasPlace(): boolean {
    return this.admitted - this.running() < this.options.maxQueue;
  }

  private take(): () => void {
    this.admitted++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.admitted--;
      this.wake();
    };
  }
}
