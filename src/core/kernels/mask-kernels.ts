import type { BaseNetwork } from '../base-network.ts';
import type { MaskBank } from '../mask-bank.ts';
import type { DeviceNetwork } from './device-network.ts';
import type { ColumnSumKernels } from './column-sums.ts';
import type { ForwardBits } from './forward-bits.ts';
import type { NormalizeInputs } from '../given-task-pass.ts';
import type { SuperposedKernel } from '../superposed-pass.ts';

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
  /** From this many vectors on, one `scores` call for all of them beats calls of 4 (native: its multi-row pass). */
  readonly multiRowFrom?: number;
  /**
   * Subset count for binary search: out[w] = number of slots in `slots` whose bit w is set, for w < words * 32.
   */
  subsetCount(bank: Uint32Array, words: number, slots: Int32Array, out: Float32Array): void;
  /** Kernels with a device (CUDA): keep this network and bank resident there (see DeviceNetwork). */
  bindNetwork?(base: BaseNetwork, bank: MaskBank): DeviceNetwork;
  /**
   * A bank of its own for the masks of `slots`, in that order: slot i of `out` holds slots[i]'s mask, the rest
   * of the last block is zero. `out` has room for ceil(slots.length / 8) blocks. With `counts` (words * 32
   * floats), also counts[w] = the number of those masks that keep w (at most 65535 slots). With `at` (word
   * indices < words), the masks in `out` and `counts` hold only those words: word j of them is word at[j].
   */
  gatherSlots(bank: Uint32Array, words: number, slots: Int32Array, out: Uint32Array, counts?: Float32Array, at?: Int32Array): void;
  /** V for one example through W ⊙ counts / n (superposed-pass.ts is the reference it equals); native only. */
  readonly superposed?: SuperposedKernel;
  /** The input layer's per-task column sums (column-sums.ts), for the background split (background-split.ts); native only. */
  readonly columnSums?: ColumnSumKernels;
  /** Given-task forward from the packed bits (forward-bits.ts); only where it beats building W ⊙ M (native). */
  readonly forwardBits?: ForwardBits;
  /** The given-task pass's input scaling, bit for bit normalizeInto (given-task-pass.ts); native only. */
  readonly normalize?: NormalizeInputs;
  /**
   * Per-example scores without V: `scores` of the vectors v_e(w) = (a_l[e][i] · δ_l[e][j]) · W(w), w = (l, i, j),
   * W(w) = ±scales[l] by the sign bits (forward-bits.ts). `acts` holds each layer's inputs (examples × n_l, layer
   * after layer), `deltas` each layer's output deltas (examples × n_{l+1}). Native only.
   */
  readonly scoresOuter?: (
    bank: Uint32Array,
    words: number,
    blocks: number,
    signs: Uint32Array,
    sizes: Int32Array,
    scales: Float32Array,
    acts: Float32Array,
    deltas: Float32Array,
    examples: number,
    out: Float32Array,
  ) => void;
}
