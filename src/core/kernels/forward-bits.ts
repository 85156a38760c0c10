/**
 * Given-task forward pass straight from the packed bits. With signed-constant weights, layer l of task t is
 * c_l · (sign ⊙ M^t), ternary, so a pass needs only the task's mask bits (read in place in the bank) and the
 * base network's sign bits (P/8 bytes, regenerated once): no float copy of a task's weights and no per-task
 * cache, so the first request for a task costs what the last one did.
 *
 * Two implementations share one contract (`ForwardBits`): the native addon's (native/forward_bits.cc, AVX-512,
 * AVX2 and scalar code) and `forwardBitsTypescript`, the plain reference the native one is tested against.
 * Contract: for the slot's mask M and sizes [n_0, …, n_L], with a_0 = x (batch × n_0, row-major),
 *   a_{l+1} = act(scales[l] · a_l @ T_l),  T_l[i][j] = M[w] · (sign[w] ? +1 : −1),  w = offset_l + i · n_{l+1} + j,
 * act = ReLU except after the last layer; out (batch × n_L) receives the logits.
 */
import { type Architecture, layerShapes, maskWords } from '../architecture.ts';
import { Xoshiro128 } from '../prng.ts';
import { BLOCK_SLOTS } from '../mask-bank.ts';

export type ForwardBits = (
  bank: Uint32Array,
  words: number,
  slot: number,
  signs: Uint32Array,
  sizes: Int32Array,
  scales: Float32Array,
  x: Float32Array,
  batch: number,
  out: Float32Array,
) => void;

/** The base network in the form the from-bits forward takes: sign bits (canonical mask layout) and c_l. */
export interface SignedBase {
  words: number;
  signs: Uint32Array;
  /** [inputSize, ...hidden, outputs]. */
  sizes: Int32Array;
  /** c_l = sqrt(2 / in_l) as float32, per layer. */
  scales: Float32Array;
}

/** Regenerates the sign bits: the PRNG outputs in order, which is the canonical layout (docs/model-format.md §2). */
export function signedBase(architecture: Architecture, seed: number): SignedBase {
  const words = maskWords(architecture);
  const rng = new Xoshiro128(seed);
  const signs = new Uint32Array(words);
  for (let j = 0; j < words; j++) signs[j] = rng.nextUint32();
  const shapes = layerShapes(architecture);
  return {
    words,
    signs,
    sizes: Int32Array.from([architecture.inputSize, ...shapes.map((s) => s.out)]),
    scales: Float32Array.from(shapes, (s) => Math.fround(Math.sqrt(2 / s.in))),
  };
}

/** The reference implementation: obvious loops over the bits, float64 sums. */
export const forwardBitsTypescript: ForwardBits = (bank, words, slot, signs, sizes, scales, x, batch, out) => {
  const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
  if (base + (words - 1) * BLOCK_SLOTS >= bank.length) throw new RangeError('slot is outside the bank');
  let a = Float64Array.from(x.subarray(0, batch * sizes[0]));
  let offset = 0;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const nIn = sizes[l], nOut = sizes[l + 1];
    const z = new Float64Array(batch * nOut);
    for (let i = 0; i < nIn; i++) {
      for (let j = 0; j < nOut; j++) {
        const w = offset + i * nOut + j;
        if (((bank[base + (w >>> 5) * BLOCK_SLOTS] >>> (w & 31)) & 1) === 0) continue;
        const t = (signs[w >>> 5] >>> (w & 31)) & 1 ? 1 : -1;
        for (let b = 0; b < batch; b++) z[b * nOut + j] += t * a[b * nIn + i];
      }
    }
    const last = l + 2 === sizes.length;
    for (let k = 0; k < z.length; k++) z[k] = last ? z[k] * scales[l] : Math.max(0, z[k] * scales[l]);
    a = z;
    offset += nIn * nOut;
  }
  out.set(a);
};

/**
 * Logits of `rows` of x (row-major, `inputSize` wide) under one slot of the bank, then the softmax over the
 * first `classes` logits: the engine's given-task path when the native forward is available.
 */
export function probabilitiesFromBits(
  forward: ForwardBits,
  base: SignedBase,
  bank: Uint32Array,
  slot: number,
  x: Float32Array,
  rows: number[],
  classes: number,
): Float32Array {
  const inputSize = base.sizes[0], outputs = base.sizes[base.sizes.length - 1];
  const input = rows.length * inputSize === x.length ? x : gatherRows(x, rows, inputSize);
  const logits = new Float32Array(rows.length * outputs);
  forward(bank, base.words, slot, base.signs, base.sizes, base.scales, input, rows.length, logits);
  return softmaxRows(logits, rows.length, outputs, classes);
}

/** Softmax over the first `classes` of each row's `outputs` logits: rows × classes. */
export function softmaxRows(logits: Float32Array, rows: number, outputs: number, classes: number): Float32Array {
  const p = new Float32Array(rows * classes);
  for (let r = 0; r < rows; r++) {
    const z = logits.subarray(r * outputs, r * outputs + classes);
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, z[c]);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(z[c] - max);
    for (let c = 0; c < classes; c++) p[r * classes + c] = Math.exp(z[c] - max) / sum;
  }
  return p;
}

function gatherRows(x: Float32Array, rows: number[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((row, i) => out.set(x.subarray(row * width, (row + 1) * width), i * width));
  return out;
}
