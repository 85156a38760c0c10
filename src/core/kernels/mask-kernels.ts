import type { ForwardBits } from './forward-bits.ts';

/**
 * The k-dependent kernels over the packed bank (layout: see mask-bank.ts). Two implementations share
 * this contract: the native addon (fast path) and TypeScript (fallback and test oracle).
 */
export interface MaskKernels {
  /** e.g. "native-avx2", "native-scalar", "typescript". */
  readonly name: string;
  /**
   * Bit-matrix times float-vectors. For e < examples and every slot i < blocks * 8:
   *   out[e * blocks * 8 + i] = Σ_{w < words * 32} v[e * words * 32 + w] · bit(slot i, weight w)
   * `v` holds `examples` vectors of words * 32 floats (zero past P).
   */
  scores(bank: Uint32Array, words: number, blocks: number, v: Float32Array, examples: number, out: Float32Array): void;
  /**
   * Subset count for binary search: out[w] = number of slots in `slots` whose bit w is set, for w < words * 32.
   */
  subsetCount(bank: Uint32Array, words: number, slots: Int32Array, out: Float32Array): void;
  /**
   * A bank of its own for the masks of `slots`, in that order: slot i of `out` holds slots[i]'s mask, the rest
   * of the last block is zero. `out` has room for ceil(slots.length / 8) blocks.
   */
  gatherSlots(bank: Uint32Array, words: number, slots: Int32Array, out: Uint32Array): void;
  /** Given-task forward from the packed bits (forward-bits.ts); only where it beats building W ⊙ M (native). */
  readonly forwardBits?: ForwardBits;
}
