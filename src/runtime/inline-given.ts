// Small given-task calls on the main thread. A given task's pass from the bits takes tens of microseconds at
// batch 1, less than the hop to the engine worker and back (two messages, a thread woken each way), so the runtime
// runs it here, on the worker's bank itself: the bank is shared memory, and the worker sends it, with each
// task's slot, when it opens the model and after every add (the bank may have grown into a new buffer).
// Task removal: the runtime calls removing() before it asks the worker, so from then on the task's calls go to
// the worker, in order with the removal, and the worker may reuse the slot at once.
import type { ClassifyCall, Prediction } from '../contract/classify.ts';
import { givenTaskPredictions } from '../core/engine.ts';
import { GivenTaskPass } from '../core/given-task-pass.ts';
import { signedBase } from '../core/kernels/forward-bits.ts';
import { loadNativeAddon } from '../platform/native-addon.ts';
import { collectGarbage } from './collect-garbage.ts';
import type { ModelInfo, SharedBank } from './worker-protocol.ts';

/**
 * Most examples a call may have to run inline. The main thread stops serving others while a pass runs: at 8
 * examples a LeNet 300-100 pass is ~0.1 ms, about what the hop to the worker costs; larger calls go to the worker.
 * (Batch 128 inline was tried: the pass itself got cheaper, ~2.0 -> ~0.9 ms, but the main thread's body read and
 * decode slowed by milliseconds, large-buffer allocations meeting the GC pressure of keeping the decoded inputs
 * here instead of moving them to the worker; docs/benchmarks.md, branch given2.)
 */
export const INLINE_MAX_BATCH = 8;

export class InlineGiven {
  private bank: Uint32Array;
  private readonly slots: Map<string, number>;

  private constructor(
    private readonly pass: GivenTaskPass,
    shared: SharedBank,
    private readonly classes: number,
  ) {
    this.bank = shared.bank;
    this.slots = new Map(Object.entries(shared.slots));
  }

  /** The inline path for a loaded model, or null where the worker does not share its bank or the native forward does not load here. */
  static for(model: ModelInfo, shared: SharedBank | undefined): InlineGiven | null {
    const addon = loadNativeAddon().addon, forward = addon?.forwardBits;
    if (!shared || typeof forward !== 'function') return null;
    const normalize = typeof addon!.normalize === 'function' ? addon!.normalize : undefined;
    const pass = new GivenTaskPass(forward, signedBase(model.architecture, model.seed), model.normalization, model.limits.classes, normalize);
    return new InlineGiven(pass, shared, model.limits.classes);
  }

  /** Whether the call runs here: a given task the bank holds, at most INLINE_MAX_BATCH examples. */
  takes(call: ClassifyCall): boolean {
    return call.task !== undefined && call.batch <= INLINE_MAX_BATCH && this.slots.has(call.task);
  }

  classify(call: ClassifyCall): Prediction[] {
    const slot = this.slots.get(call.task!)!;
    return givenTaskPredictions(this.pass.probabilities(this.bank, slot, call.inputs, call.batch), call, this.classes);
  }

  /** The worker added a task: the bank as of that add, and the task's slot. */
  added(id: string, shared: { bank: Uint32Array; slot: number }): void {
    // A longer bank is a new buffer: the old one is freed once this thread's wrappers of it are collected too.
    if (shared.bank.length !== this.bank.length) setImmediate(collectGarbage);
    this.bank = shared.bank;
    this.slots.set(id, shared.slot);
  }

  /** The task's calls go to the worker from now on; returns its slot, for restore() if the removal fails. */
  removing(id: string): number | undefined {
    const slot = this.slots.get(id);
    this.slots.delete(id);
    return slot;
  }

  restore(id: string, slot: number): void {
    this.slots.set(id, slot);
  }
}
