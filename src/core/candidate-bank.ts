import { type MaskKernels } from './kernels/mask-kernels.ts';
import { BLOCK_SLOTS } from './mask-bank.ts';
import { type PackedSlots } from './supermask-network.ts';

/**
 * Binary search's remaining candidates, gathered into a bank of their own (slot i = slots[i]) with their
 * per-weight count Σ_i M^i. A round scores and counts only these, and the next round's candidates are gathered
 * from this bank, so the rounds after the first cost k/2 + k/4 + … ≈ k in all, not k each.
 * Transient: built per search, dropped when it ends (it is no cache).
 */
export class CandidateBank implements PackedSlots {
  readonly raw: Uint32Array;
  readonly blocks: number;
  /** Per weight (words · 32): how many of the candidates keep it. */
  readonly counts: Float32Array;

  constructor(
    private readonly kernels: MaskKernels,
    private readonly words: number,
    /** The candidates' slots in the engine's bank, in the order they sit here. */
    readonly slots: Int32Array,
    from: PackedSlots,
    /** Positions in `from` to take (its slots when `from` is the engine's bank). */
    positions: Int32Array,
  ) {
    this.blocks = Math.ceil(slots.length / BLOCK_SLOTS);
    this.raw = new Uint32Array(this.blocks * BLOCK_SLOTS * words);
    kernels.gatherSlots(from.raw, words, positions, this.raw);
    this.counts = new Float32Array(words * 32);
    kernels.subsetCount(this.raw, words, Int32Array.from(slots.keys()), this.counts);
  }

  static of(kernels: MaskKernels, words: number, bank: PackedSlots, slots: Int32Array): CandidateBank {
    return new CandidateBank(kernels, words, slots, bank, slots);
  }

  /** The candidates at `positions` (ascending positions here), gathered from this bank. */
  narrow(positions: Int32Array): CandidateBank {
    return new CandidateBank(this.kernels, this.words, positions.map((p) => this.slots[p]), this, positions);
  }
}
