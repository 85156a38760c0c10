// The background split of the input layer, for scores from one example (one-shot, and each round of binary
// search from one example).
//
// A task's score is Σ_w M_t(w) · V(w), and the input layer's share of V is x_i · δ_0[j] · W_0[i][j]. Served
// inputs are normalised, so the background pixel is x0 ≠ 0 (MNIST: −0.4242) and no row of that layer is zero;
// but with x = x0 + (x − x0) and signed-constant weights W_0 = c_0 · sign,
//   Σ_{i,j} M_t · x_i δ_0[j] W_0[i][j] = Σ_{i,j} M_t · (x_i − x0) δ_0[j] W_0[i][j] + x0 · c_0 · Σ_j δ_0[j] · S_t[j],
//   S_t[j] = Σ_i M_t[i][j] · sign[i][j],
// so V' (V with the input layer written from x − x0) is zero on every background row, and the bank pass reads
// only the words where V' is not (kernels' `scores` skips zero words for one vector), while the second term
// needs only the k × n_1 integers S_t, kept here as tasks come and go. The identity is exact; the float sums
// round differently from the plain V's, by a few ulps of the score.
import type { MaskBank } from './mask-bank.ts';
import type { ColumnSumKernels } from './kernels/column-sums.ts';

/** Fewest inputs at x0 for the split to pay: below that it zeroes too few words to beat the term's k × n_1 pass. */
const MIN_BACKGROUND_INPUTS = 8;

/** The input's background value x0 (its commonest value) when splitting pays, else 0 (no split). */
export function backgroundValue(x: Float32Array): number {
  const sorted = Float32Array.from(x).sort();
  let best = 0, bestRun = 0;
  for (let i = 0; i < sorted.length; ) {
    let end = i + 1;
    while (end < sorted.length && sorted[end] === sorted[i]) end++;
    if (end - i > bestRun) [best, bestRun] = [sorted[i], end - i];
    i = end;
  }
  return bestRun >= MIN_BACKGROUND_INPUTS && Number.isFinite(best) ? best : 0;
}

/**
 * S_t[j] for every slot of the bank (int16: |S| ≤ n_0), updated as masks are added and removed. Added slots
 * are counted together on the next use (a model loading thousands of tasks: one kernel pass over their input
 * layer), not one by one as they arrive.
 */
export class InputColumnSums {
  /** slotCapacity × cols, row = slot; empty slots' rows are zero. */
  private table = new Int16Array(0);
  private readonly uncounted = new Set<number>();

  constructor(
    private readonly kernels: ColumnSumKernels,
    private readonly words: number,
    /** The base network's sign bits (canonical mask layout). */
    private readonly signs: Uint32Array,
    /** n_0, the input layer's rows. */
    readonly rows: number,
    /** n_1, its columns. */
    readonly cols: number,
  ) {}

  added(slot: number): void {
    this.uncounted.add(slot);
  }

  removed(slot: number): void {
    this.uncounted.delete(slot);
    if ((slot + 1) * this.cols <= this.table.length) this.table.fill(0, slot * this.cols, (slot + 1) * this.cols);
  }

  /**
   * out[p] += scale · Σ_j delta0[j] · S_{slot p}[j] for the scores `out` of a bank pass: over the whole bank
   * (slot p = p) when `slots` is undefined, else over a subset whose position p holds slots[p].
   */
  addTerm(bank: MaskBank, scale: number, delta0: Float64Array, slots: Int32Array | undefined, out: Float32Array): void {
    const coef = new Float32Array(this.cols);
    for (let j = 0; j < this.cols; j++) coef[j] = scale * delta0[j];
    this.kernels.term(this.current(bank), this.cols, slots, coef, out);
  }

  /** out[j] = Σ_p S_{slots[p]}[j]: the column sums of the superposition of `slots` (exact integers). */
  totals(bank: MaskBank, slots: Int32Array, out: Int32Array): void {
    this.kernels.totals(this.current(bank), this.cols, slots, out);
  }

  /** The table, brought up to date with `bank` (the bank these slots live in). */
  current(bank: MaskBank): Int16Array {
    const length = bank.slotCapacity * this.cols;
    if (this.table.length < length) {
      const grown = new Int16Array(length);
      grown.set(this.table);
      this.table = grown;
    }
    if (this.uncounted.size > 0) {
      const slots = Int32Array.from(this.uncounted);
      const sums = new Int16Array(slots.length * this.cols);
      this.kernels.sums(bank.raw, this.words, slots, this.signs, this.rows, this.cols, sums);
      slots.forEach((slot, p) => this.table.set(sums.subarray(p * this.cols, (p + 1) * this.cols), slot * this.cols));
      this.uncounted.clear();
    }
    return this.table;
  }
}
