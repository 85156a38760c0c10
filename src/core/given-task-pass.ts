/**
 * A given task's class probabilities for a whole call, straight from the packed bits: normalise, the from-bits
 * forward (kernels/forward-bits.ts), softmax over the real classes. The Engine runs it in the engine worker; the
 * serving runtime runs the same pass on the main thread for small calls (runtime/inline-given.ts), on the bank the
 * worker shares with it.
 *
 * The normalised inputs and the logits live in scratch arrays kept between calls and grown when a call needs
 * more: a fresh half-megabyte array per call (batch 128) costs more in page faults than the pass itself.
 */
import type { Normalization } from '../contract/model.ts';
import { type ForwardBits, type SignedBase, softmaxRows } from './kernels/forward-bits.ts';

/** normalizeInto's contract as a kernel: out[i] = (x[i] − mean) / std for i < x.length, rounded as normalizeInto rounds. */
export type NormalizeInputs = (x: Float32Array, mean: number, std: number, out: Float32Array) => void;

export class GivenTaskPass {
  private normalized = new Float32Array(0);
  private logits = new Float32Array(0);

  /** `normalize`: the native input scaling where the addon has it (a fifth of the pass at batch 128 in JavaScript). */
  constructor(
    private readonly forward: ForwardBits,
    readonly base: SignedBase,
    private readonly normalization: Normalization,
    private readonly classes: number,
    private readonly normalize?: NormalizeInputs,
  ) {}

  /** batch × classes probabilities of `inputs` (batch × inputSize, not normalised) under the bank's `slot`. */
  probabilities(bank: Uint32Array, slot: number, inputs: Float32Array, batch: number): Float32Array {
    const { sizes, words, signs, scales } = this.base;
    const outputs = sizes[sizes.length - 1];
    if (this.normalized.length < inputs.length) this.normalized = new Float32Array(inputs.length);
    if (this.logits.length < batch * outputs) this.logits = new Float32Array(batch * outputs);
    let x: Float32Array;
    if (this.normalize) {
      x = this.normalized.subarray(0, inputs.length);
      this.normalize(inputs, this.normalization.mean, this.normalization.std, x);
    } else {
      x = normalizeInto(inputs, this.normalization, this.normalized);
    }
    const logits = this.logits.subarray(0, batch * outputs);
    this.forward(bank, words, slot, signs, sizes, scales, x, batch, logits);
    return softmaxRows(logits, batch, outputs, this.classes);
  }
}

/** (x − mean) / std in float32, each step rounded as tfjs rounds it, into the front of `out`; returns that part. */
export function normalizeInto(inputs: Float32Array, normalization: Normalization, out: Float32Array): Float32Array {
  const mean = Math.fround(normalization.mean), std = Math.fround(normalization.std);
  for (let i = 0; i < inputs.length; i++) out[i] = Math.fround(inputs[i] - mean) / std;
  return out.subarray(0, inputs.length);
}
