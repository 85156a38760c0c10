/**
 * Per-task column sums of the input layer, the kernels behind the background split (background-split.ts). Two
 * implementations share the contract: the native addon's (native/column_sums.cc: AVX-512, AVX2, scalar) and
 * `columnSumsTypescript`, the plain reference it is tested against.
 *
 * For the input layer's weights w = i · cols + j (i < rows; the layer starts at weight 0) with sign bits `signs`
 * (canonical mask layout, bit 1 = +c):
 *   sums:  out[p · cols + j] = Σ_i M_{slots[p]}(i · cols + j) · (sign(i · cols + j) ? +1 : −1)   (exact, int16)
 *   term:  out[p] += Σ_j coef[j] · sums[row_p · cols + j],  row_p = rows[p], or p when rows is undefined
 *          (then for p < min(out.length, sums.length / cols)); float32 sums, in an order each path chooses.
 *   totals: out[j] = Σ_p sums[rows[p] · cols + j]   (exact, int32: the column sums of a superposition)
 */
import { BLOCK_SLOTS } from '../mask-bank.ts';

export interface ColumnSumKernels {
  sums(bank: Uint32Array, words: number, slots: Int32Array, signs: Uint32Array, rows: number, cols: number, out: Int16Array): void;
  term(sums: Int16Array, cols: number, rows: Int32Array | undefined, coef: Float32Array, out: Float32Array): void;
  totals(sums: Int16Array, cols: number, rows: Int32Array, out: Int32Array): void;
}

export const columnSumsTypescript: ColumnSumKernels = {
  sums(bank, words, slots, signs, rows, cols, out) {
    if (rows * cols > words * 32) throw new RangeError('rows * cols weights do not fit the words');
    if (out.length < slots.length * cols) throw new RangeError('out is shorter than slots * cols');
    const capacity = bank.length / words;
    slots.forEach((slot, p) => {
      if (slot < 0 || slot >= capacity) throw new RangeError(`slot ${slot} is outside the bank`);
      const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
      const row = out.subarray(p * cols, (p + 1) * cols).fill(0);
      for (let w = 0; w < rows * cols; w++) {
        if (((bank[base + (w >>> 5) * BLOCK_SLOTS] >>> (w & 31)) & 1) === 0) continue;
        row[w % cols] += (signs[w >>> 5] >>> (w & 31)) & 1 ? 1 : -1;
      }
    });
  },

  term(sums, cols, rows, coef, out) {
    const count = rows ? rows.length : Math.min(out.length, Math.floor(sums.length / cols));
    if (out.length < count) throw new RangeError('out is shorter than rows');
    for (let p = 0; p < count; p++) {
      const at = (rows ? rows[p] : p) * cols;
      if (at < 0 || at + cols > sums.length) throw new RangeError('a row is outside the sums');
      let sum = 0;
      for (let j = 0; j < cols; j++) sum += coef[j] * sums[at + j];
      out[p] += sum;
    }
  },

  totals(sums, cols, rows, out) {
    if (out.length < cols) throw new RangeError('out is shorter than cols');
    out.fill(0, 0, cols);
    for (const row of rows) {
      const at = row * cols;
      if (at < 0 || at + cols > sums.length) throw new RangeError('a row is outside the sums');
      for (let j = 0; j < cols; j++) out[j] += sums[at + j];
    }
  },
};
