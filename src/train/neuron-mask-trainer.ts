// Learns one task's neuron masks on the frozen HopSupSup network (edge-popup on neurons): a real score per
// hidden neuron, the mask keeps the top `density` fraction of each layer's scores, and the scores take Adam
// steps on the cross-entropy with the straight-through gradient ∂L/∂score = ∂L/∂m. A fixed density of ½
// gives balanced ±1 patterns, the regime where a Hopfield reservoir stores the most.
import * as tf from '@tensorflow/tfjs-core';
import { type NeuronMaskedNetwork, disposeTrace, maskTensors } from '../core/neuron-masked-network.ts';
import { Xoshiro128 } from '../core/prng.ts';

export interface NeuronMaskTraining {
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Fraction of each hidden layer's neurons the mask keeps. */
  density?: number;
  /** Seeds the score initialisation and the example order. */
  seed?: number;
}

export const DEFAULT_NEURON_MASK_TRAINING: Required<NeuronMaskTraining> = {
  epochs: 3,
  batchSize: 128,
  learningRate: 0.01,
  density: 0.5,
  seed: 1,
};

/** Examples of one task: `count` images of `inputSize` pixels and their labels (the network's output index). */
export interface LabelledExamples {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
}

export function trainNeuronMasks(net: NeuronMaskedNetwork, data: LabelledExamples, options: NeuronMaskTraining = {}): Uint8Array[] {
  const o = { ...DEFAULT_NEURON_MASK_TRAINING, ...options };
  if (!(o.density > 0 && o.density < 1)) throw new RangeError(`density must be in (0, 1), got ${o.density}`);
  const { inputSize, outputs } = net.architecture;
  const rng = new Xoshiro128(o.seed);
  const scores = net.maskSizes.map((d) => Float32Array.from({ length: d }, () => (rng.nextFloat() - 0.5) * 1e-3));
  const adam = net.maskSizes.map((d) => ({ m: new Float32Array(d), v: new Float32Array(d) }));
  const beta1 = 0.9;
  const beta2 = 0.999;
  let stepCount = 0;
  const order = Uint32Array.from({ length: data.count }, (_, i) => i);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    shuffle(order, rng);
    for (let start = 0; start + 2 <= data.count; start += o.batchSize) {
      const rows = order.subarray(start, Math.min(start + o.batchSize, data.count));
      const { x, y } = batchOf(data, rows, inputSize, outputs);
      const masks = maskTensors(scores.map((sc) => topFraction(sc, o.density)));
      const trace = net.trace(x, masks);
      const dLogits = tf.tidy(() => tf.div(tf.sub(tf.softmax(trace.logits), y), rows.length) as tf.Tensor2D);
      const grads = net.maskGradients(trace, masks, dLogits);
      const g = grads.map((t) => t.dataSync() as Float32Array);
      tf.dispose([x, y, dLogits, ...masks, ...grads]);
      disposeTrace(trace);
      stepCount++;
      const c1 = 1 - beta1 ** stepCount;
      const c2 = 1 - beta2 ** stepCount;
      scores.forEach((sc, l) => {
        const { m, v } = adam[l];
        for (let i = 0; i < sc.length; i++) {
          m[i] = beta1 * m[i] + (1 - beta1) * g[l][i];
          v[i] = beta2 * v[i] + (1 - beta2) * g[l][i] * g[l][i];
          sc[i] -= (o.learningRate * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + 1e-8);
        }
      });
    }
  }
  return scores.map((sc) => topFraction(sc, o.density));
}

/** Fraction of `data` the masks classify correctly, in batches of `batchSize` (batch norm needs ≥ 2 per batch). */
export function maskAccuracy(net: NeuronMaskedNetwork, masks: Uint8Array[], data: LabelledExamples, batchSize = 128): number {
  const { inputSize, outputs } = net.architecture;
  const mt = maskTensors(masks);
  let correct = 0;
  for (const rows of evaluationBatches(data.count, batchSize)) {
    const { x, y } = batchOf(data, rows, inputSize, outputs);
    const logits = net.logits(x, mt);
    correct += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'int32')).dataSync()[0]);
    tf.dispose([x, y, logits]);
  }
  tf.dispose(mt);
  return correct / data.count;
}

/**
 * Batches of `batchSize` rows covering 0..count−1 in a seeded random order (batch norm uses the batch's own
 * statistics, so a batch must look like the task: a batch of one digit would normalise its class away); a
 * last batch of 1 joins the one before it.
 */
export function evaluationBatches(count: number, batchSize: number, seed = 1): Uint32Array[] {
  const order = Uint32Array.from({ length: count }, (_, i) => i);
  shuffle(order, new Xoshiro128(seed));
  const out: Uint32Array[] = [];
  for (let start = 0; start < count; start += batchSize) {
    const end = count - (start + batchSize) === 1 ? count : Math.min(start + batchSize, count);
    out.push(order.slice(start, end));
    if (end === count) break;
  }
  return out;
}

/** The examples at `rows` as a [B, inputSize] tensor and one-hot labels [B, outputs]. */
export function batchOf(data: LabelledExamples, rows: Uint32Array, inputSize: number, outputs: number): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const pixels = new Float32Array(rows.length * inputSize);
  const onehot = new Float32Array(rows.length * outputs);
  rows.forEach((r, i) => {
    pixels.set(data.images.subarray(r * inputSize, (r + 1) * inputSize), i * inputSize);
    onehot[i * outputs + data.labels[r]] = 1;
  });
  return { x: tf.tensor2d(pixels, [rows.length, inputSize]), y: tf.tensor2d(onehot, [rows.length, outputs]) };
}

/** 0/1 mask keeping the round(density · d) highest scores (ties by lower index). */
export function topFraction(scores: Float32Array, density: number): Uint8Array {
  const k = Math.round(density * scores.length);
  const idx = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  const mask = new Uint8Array(scores.length);
  for (let i = 0; i < k; i++) mask[idx[i]] = 1;
  return mask;
}

function shuffle(a: Uint32Array, rng: Xoshiro128): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextInt(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}
