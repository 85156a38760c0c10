// Small given-task calls on the main thread. A given task's pass from the bits takes tens of microseconds at
// batch 1, less than the hop to the engine worker and back (two messages, a thread woken each way), so the runtime
// runs it here, on the worker's bank itself: the bank is shared memory, and the worker sends it, with each
// task's slot, when it opens the model and after every add (the bank may have grown into a new buffer).
// Task removal: the runtime calls removing() before it asks the worker, so from then on the task's calls go to
// the worker, in order with the removal, and the worker may reuse the slot at once.
import type { ClassifyCall, Prediction } from '../contract/classify.ts';
import { weightCount } from '../core/architecture.ts';
import { givenTaskPredictions } from '../core/engine.ts';
import { GivenTaskPass } from '../core/given-task-pass.ts';
import { signedBase } from '../core/kernels/forward-bits.ts';
import { loadNativeAddon } from '../platform/native-addon.ts';
import type { ModelInfo, SharedBank } from './worker-protocol.ts';

/**
 * Most examples a call may have to run inline, and most multiply-adds (examples × weights). The main thread stops
 * serving others while a pass runs, so only passes of about a millisecond or less run here: LeNet 300-100 (315,200
 * weights) at 128 examples is ~0.4-0.7 ms on AVX-512, less than what the worker costs it (the hop both ways and the
 * structured clone of 128 predictions back, ~0.5-1 ms measured through REST). Larger calls go to the worker.
 */
export const INLINE_MAX_BATCH = 256;
export const INLINE_MAX_WORK = 2 ** 26;

export class InlineGiven {
  private bank: Uint32Array;
  private readonly slots: Map<string, number>;

  private constructor(
    private readonly pass: GivenTaskPass,
    shared: SharedBank,
    private readonly classes: number,
    private readonly weights: number,
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
    return new InlineGiven(pass, shared, model.limits.classes, weightCount(model.architecture));
  }

  /** Whether the call runs here: a given task the bank holds, at most INLINE_MAX_BATCH examples and INLINE_MAX_WORK. */
  takes(call: ClassifyCall): boolean {
    return call.task !== undefined && call.batch <= INLINE_MAX_BATCH && call.batch * this.weights <= INLINE_MAX_WORK && this.slots.has(call.task);
  }

  classify(call: ClassifyCall): Prediction[] {
    const slot = this.slots.get(call.task!)!;
    return givenTaskPredictions(this.pass.probabilities(this.bank, slot, call.inputs, call.batch), call, this.classes);
  }

  /** The worker added a task: the bank as of that add, and the task's slot. */
  added(id: string, shared: { bank: Uint32Array; slot: number }): void {
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
