import { type MaskKernels } from './kernels/mask-kernels.ts';
import { type LiveWords } from './live-words.ts';
import { BLOCK_SLOTS } from './mask-bank.ts';
import { type PackedSlots } from './supermask-network.ts';

/**
 * Binary search's remaining candidates, gathered into a bank of their own (slot i = slots[i]), with their
 * per-weight count (the round's superposition), counted by the same kernel call that gathers them. A round
 * scores only these, and the next round's candidates are gathered from this bank, so the rounds cost
 * k/2 + k/4 + … after the first, not k each. With `live` (a search from one example split at its background),
 * the masks and counts hold only the live words (live-words.ts).
 */
export class CandidateBank implements PackedSlots {
  readonly raw: Uint32Array;
  readonly blocks: number;
  /** counts[w] = how many of the candidates keep weight w (words * 32 floats, in the held words' layout). */
  readonly counts: Float32Array;

  private constructor(
    private readonly kernels: MaskKernels,
    /** Words a mask holds here. */
    private readonly words: number,
    private readonly scratch: CandidateScratch,
    /** The candidates' slots in the engine's bank, in the order they sit here. */
    readonly slots: Int32Array,
    from: PackedSlots,
    /** Positions in `from` to take (its slots when `from` is the engine's bank). */
    positions: Int32Array,
    fromWords: number,
    readonly live?: LiveWords,
    /** The words of `from`'s masks to take (all when undefined). */
    at?: Int32Array,
  ) {
    this.blocks = Math.ceil(slots.length / BLOCK_SLOTS);
    ({ raw: this.raw, counts: this.counts } = scratch.take(this.blocks * BLOCK_SLOTS * words, words * 32));
    kernels.gatherSlots(from.raw, fromWords, positions, this.raw, this.counts, at);
  }

  /** The masks of `slots` in the engine's bank (of `words` words), whole or only the words `live` holds. */
  static of(kernels: MaskKernels, words: number, scratch: CandidateScratch, bank: PackedSlots, slots: Int32Array, live?: LiveWords): CandidateBank {
    return new CandidateBank(kernels, live?.words.length ?? words, scratch, slots, bank, slots, words, live, live?.words);
  }

  /** The candidates at `positions` (ascending positions here), gathered from this bank; this one is then spent. */
  narrow(positions: Int32Array): CandidateBank {
    return new CandidateBank(this.kernels, this.words, this.scratch, positions.map((p) => this.slots[p]), this, positions, this.words, this.live);
  }
}

/**
 * Two buffers the rounds of a search alternate between (each round reads the last one's and writes the other),
 * kept between searches: fresh ones cost more in page faults than the whole search (measured ~0.7 s for 50 MB
 * on our VMs). Scratch, not a cache: nothing in them is read by a later search. Holds at most k/2 + k/4 masks.
 * A buffer that must grow at least doubles: searches from one example ask for more or fewer live words, and
 * the pages a search never touches cost nothing.
 */
export class CandidateScratch {
  private buffers = [new Uint32Array(0), new Uint32Array(0)];
  private counts = new Float32Array(0);
  private vector = new Float32Array(0);
  private turn = 0;

  /** A bank of `length` words, and the counts (one buffer: a round reads only its own counts). */
  take(length: number, weights: number): { raw: Uint32Array; counts: Float32Array } {
    this.turn ^= 1;
    if (this.buffers[this.turn].length < length) this.buffers[this.turn] = new Uint32Array(grown(this.buffers[this.turn].length, length));
    if (this.counts.length < weights) this.counts = new Float32Array(grown(this.counts.length, weights));
    return { raw: this.buffers[this.turn].subarray(0, length), counts: this.counts.subarray(0, weights) };
  }

  /** `length` floats of zeros, for a search's V (live-words.ts). */
  zeros(length: number): Float32Array {
    if (this.vector.length < length) this.vector = new Float32Array(grown(this.vector.length, length));
    return this.vector.subarray(0, length).fill(0);
  }
}

function grown(length: number, needed: number): number {
  return Math.max(needed, 2 * length);
}
