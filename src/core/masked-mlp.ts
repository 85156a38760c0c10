// The masked MLP on one page: what the engine serves and what training learns are the same model, so its
// math is written once, here.
//
// - The model: every layer l computes x @ (W_l ⊙ M_l), ReLU between layers, no biases; W is the frozen base
//   network (base-network.ts), M the task's binary mask. Layers are [in][out] (x @ W needs no transpose).
// - The masking rule: weight w is kept when bit (w & 31) of word (w >>> 5) of the packed mask is set. A mask is
//   trained as real scores S, one per weight: GN-style masks keep S ≥ 0, GG-style masks keep the top `density`
//   of |S| within each layer (edge-popup).
// - Forward and backward: dense passes over effective weights W ⊙ M (or, for task inference, W ⊙ Σ α_i M^i),
//   back to the deltas δ_l, so that dObj/dW_eff_l = a_lᵀ · δ_l.
// - Straight-through: M is a step function of S, so training passes dL/dM straight through to S:
//   dL/dS = dL/dW_eff ⊙ W (score-update.ts applies it inside RMSProp). Task inference takes the same product
//   V = dObj/dW_eff ⊙ W as the mask-independent factor of every dObj/dα_i (supermask-network.ts).
// - The training loss: softmax cross-entropy over all s outputs, labels in 0..l−1.
//
// The wasm backend's matMul loses its fast path with transposeA/transposeB (about 10x slower, measured), so the
// backward pass uses explicit transposes and a cached Wᵀ.
import { tf } from './tfjs.ts';

export type MaskStyle = 'gn' | 'gg';
export const MASK_STYLES: readonly MaskStyle[] = ['gn', 'gg'];

/** Whether a packed mask keeps weight w. */
export function maskKeeps(mask: Uint32Array, w: number): boolean {
  return ((mask[w >>> 5] >>> (w & 31)) & 1) === 1;
}

/** Packs per-layer keep decisions (1 = keep) into the packed mask of `words` 32-bit words. */
export function packMask(layers: Uint8Array[], words: number): Uint32Array {
  const mask = new Uint32Array(words);
  let w = 0;
  for (const keep of layers) {
    for (let i = 0; i < keep.length; i++, w++) if (keep[i]) mask[w >>> 5] |= 1 << (w & 31);
  }
  if (w > words * 32) throw new RangeError(`${w} weights do not fit in ${words} words`);
  return mask;
}

/** GN effective weights: out = W ⊙ (S ≥ 0). */
export function maskBySign(S: Float32Array, W: Float32Array, out: Float32Array): void {
  // Branch-free (+bool): a sign test on random scores mispredicts half the time (3x slower measured).
  for (let i = 0; i < S.length; i++) out[i] = W[i] * +(S[i] >= 0);
}

/** GG effective weights: out = W ⊙ (|S| ≥ threshold), the layer's threshold from topKThreshold. */
export function maskByMagnitude(S: Float32Array, W: Float32Array, threshold: number, out: Float32Array): void {
  for (let i = 0; i < S.length; i++) out[i] = W[i] * +(Math.abs(S[i]) >= threshold);
}

/** The packed mask the scores stand for, by the same rule as maskBySign / maskByMagnitude. */
export function maskFromScores(scores: Float32Array[], style: MaskStyle, thresholds: ArrayLike<number>, words: number): Uint32Array {
  const keep = scores.map((S, l) => {
    const k = new Uint8Array(S.length);
    const thr = thresholds[l];
    if (style === 'gg') for (let i = 0; i < S.length; i++) k[i] = +(Math.abs(S[i]) >= thr);
    else for (let i = 0; i < S.length; i++) k[i] = +(S[i] >= 0);
    return k;
  });
  return packMask(keep, words);
}

/** Weights kept per layer for a GG mask of this density: round(density · n), at least 1. */
export function keptPerLayer(n: number, density: number): number {
  return Math.min(n, Math.max(1, Math.round(density * n)));
}

/**
 * The GG threshold of one layer: the k-th largest |S|; weights with |S| ≥ threshold are kept (ties, which
 * need exactly equal float scores, may keep a few more). `scratch` is reused between calls.
 */
export function topKThreshold(scores: Float32Array, k: number, scratch: Float32Array): number {
  const n = scores.length;
  for (let i = 0; i < n; i++) scratch[i] = Math.abs(scores[i]);
  // Quickselect for the element of rank n − k in ascending order (the k-th largest).
  const target = n - k;
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = median3(scratch[lo], scratch[(lo + hi) >>> 1], scratch[hi]);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (scratch[i] < pivot) i++;
      while (scratch[j] > pivot) j--;
      if (i <= j) {
        const t = scratch[i];
        scratch[i] = scratch[j];
        scratch[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return scratch[target];
}

function median3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
}

export interface DenseLayers {
  /** Effective weights per layer, [in, out]. */
  weights: tf.Tensor2D[];
  /** Their transposes, [out, in], for the backward pass. */
  transposed: tf.Tensor2D[];
}

export function makeDenseLayers(weights: tf.Tensor2D[]): DenseLayers {
  return { weights, transposed: weights.map((w) => tf.keep(tf.transpose(w))) };
}

export function disposeDenseLayers(layers: DenseLayers): void {
  for (const t of [...layers.weights, ...layers.transposed]) t.dispose();
}

export function forward(weights: tf.Tensor2D[], x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    let h = x;
    weights.forEach((w, l) => {
      h = tf.matMul(h, w);
      if (l + 1 < weights.length) h = tf.relu(h);
    });
    return h;
  });
}

/** Forward keeping each layer's input (for the backward pass). Caller disposes everything returned. */
export function forwardTrace(weights: tf.Tensor2D[], x: tf.Tensor2D): { inputs: tf.Tensor2D[]; logits: tf.Tensor2D } {
  const inputs: tf.Tensor2D[] = [];
  let h = x.clone();
  weights.forEach((w, l) => {
    inputs.push(h);
    const z: tf.Tensor2D = tf.matMul(h, w);
    if (l + 1 < weights.length) {
      h = tf.relu(z);
      z.dispose();
    } else {
      h = z;
    }
  });
  return { inputs, logits: h };
}

/**
 * Backward from dObj/dlogits to the deltas δ_l = dObj/d(pre-activation of layer l) (each [B, out_l]);
 * dObj/dW_l = inputs_lᵀ · δ_l. Reads layers.transposed[l] for l ≥ 1 only. Returned deltas are owned by the caller.
 */
export function backwardDeltas(layers: DenseLayers, inputs: tf.Tensor2D[], dLogits: tf.Tensor2D): tf.Tensor2D[] {
  const deltas: tf.Tensor2D[] = new Array(inputs.length);
  deltas[inputs.length - 1] = dLogits.clone();
  for (let l = inputs.length - 1; l > 0; l--) {
    deltas[l - 1] = tf.tidy(() => {
      const back = tf.matMul(deltas[l], layers.transposed[l]);
      // ReLU'(z) = 1[z > 0] and inputs[l] = relu(z), so the gate is inputs[l] > 0.
      return tf.mul(back, tf.cast(tf.greater(inputs[l], 0), 'float32')) as tf.Tensor2D;
    });
  }
  return deltas;
}

/**
 * One forward and backward pass: each layer's input a_l and delta δ_l, so that dObj/dW_l = a_lᵀ · δ_l
 * (summed over the batch) or, per example e, the outer product a_l[e] ⊗ δ_l[e]. Caller disposes both lists.
 */
export function gradientTrace(
  layers: DenseLayers,
  x: tf.Tensor2D,
  dObjective: (logits: tf.Tensor2D) => tf.Tensor2D,
): { inputs: tf.Tensor2D[]; deltas: tf.Tensor2D[] } {
  const { inputs, logits } = forwardTrace(layers.weights, x);
  const dLogits = tf.tidy(() => dObjective(logits));
  const deltas = backwardDeltas(layers, inputs, dLogits);
  tf.dispose([logits, dLogits]);
  return { inputs, deltas };
}

/**
 * dObj/dW_l summed over the batch: a_lᵀ · δ_l, with an explicit transpose (see the top), or with `inputT`
 * when the caller already holds a_lᵀ (training builds the first layer's from the batch directly).
 */
export function batchWeightGradient(input: tf.Tensor2D, delta: tf.Tensor2D, inputT?: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(inputT ?? tf.transpose(input), delta));
}

/**
 * The training loss: softmax cross-entropy over all s outputs, mean over the batch. Writes ∂L/∂logits =
 * (p − onehot) / B and returns the mean loss and the number of examples whose argmax over the first
 * `classes` outputs is right.
 */
export function crossEntropyGradient(
  logits: Float32Array,
  labels: Int32Array,
  B: number,
  s: number,
  classes: number,
  out: Float32Array,
): { loss: number; correct: number } {
  let loss = 0;
  let correct = 0;
  const exps = new Float64Array(s); // one exp per logit, kept in double: the same bits as computing it twice
  for (let b = 0; b < B; b++) {
    const row = b * s;
    let max = -Infinity;
    for (let j = 0; j < s; j++) max = Math.max(max, logits[row + j]);
    let sum = 0;
    for (let j = 0; j < s; j++) sum += exps[j] = Math.exp(logits[row + j] - max);
    const y = labels[b];
    loss += Math.log(sum) + max - logits[row + y];
    for (let j = 0; j < s; j++) out[row + j] = exps[j] / sum / B;
    out[row + y] -= 1 / B;
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[row + j] > logits[row + best]) best = j;
    if (best === y) correct++;
  }
  return { loss: loss / B, correct };
}
