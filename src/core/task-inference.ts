// Task inference (GN / NN scenarios): which stored mask explains this data?
// One-shot: superpose all k masks with α_i = 1/k, take ∂obj/∂α by one backward pass, pick argmax(-∂obj/∂α).
// Binary: repeat on the half of the candidates whose gradient is lowest until one is left (⌈log2 k⌉ rounds).
import * as tf from '@tensorflow/tfjs-core';
import type { InferenceOptions } from '../contract/classify.ts';
import { noTasks } from '../contract/errors.ts';
import { type SupermaskNetwork } from './supermask-network.ts';
import { CandidateBank } from './candidate-bank.ts';
import { disposeDenseLayers } from './masked-mlp.ts';

export interface TaskDecision {
  slot: number;
  /** ν of the chosen slot over the full superposition. */
  confidence: number;
  /** No stored mask fits (k · max ν < 1 + ε). Always false when k = 1: one mask gives no contrast to test. */
  unknown: boolean;
}

/**
 * One decision per example of `x` (already normalised). Throws when no task is stored. `segments` (merged
 * calls, runtime/merge.ts): one-shot decisions per segment of rows, as if each segment were its own call.
 */
export function inferTasks(net: SupermaskNetwork, x: tf.Tensor2D, options: InferenceOptions, segments?: number[]): TaskDecision[] {
  const slots = net.bank.occupiedSlots();
  if (slots.length === 0) throw noTasks();
  const batch = x.shape[0];
  if (slots.length === 1) return new Array(batch).fill({ slot: slots[0], confidence: 1, unknown: false });
  if (segments && segments.length > 1) return oneShotPerSegment(net, slots, x, options, segments);

  if (options.decideFrom === 'each') {
    if (options.method === 'one-shot') return oneShot(net, slots, x, options, true);
    return range(batch).map((e) => withRows(x, e, 1, (row) => binarySearch(net, slots, row, options)));
  }
  const decide = (data: tf.Tensor2D) =>
    options.method === 'one-shot' ? oneShot(net, slots, data, options, false)[0] : binarySearch(net, slots, data, options);
  const decision = options.decideFrom === 'first' ? withRows(x, 0, 1, decide) : decide(x);
  return new Array(batch).fill(decision);
}

function oneShot(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, perExample: boolean): TaskDecision[] {
  const one = perExample ? null : singleExample(net, x);
  const grads = one ? net.scoresFromCounts(net.bank.count, slots.length, one, o.objective) : net.gradientsOver(x, o.objective, perExample);
  const width = net.bank.slotCapacity;
  return range(grads.length / width).map((r) => decideFromGradients(grads.subarray(r * width, (r + 1) * width), slots, o.epsilon));
}

/** One V row per segment (its first example or all of it), then one bank pass for all the rows. */
function oneShotPerSegment(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, segments: number[]): TaskDecision[] {
  const starts = segments.map((_, r) => segments.slice(0, r).reduce((a, b) => a + b, 0));
  const own = (r: number) => (o.decideFrom === 'first' ? 1 : segments[r]);
  if (net.onDevice) return segments.flatMap((n, r) => withRows(x, starts[r], n, (part) => inferTasks(net, part, o)));
  const padded = net.words * 32;
  const vectors = new Float32Array(segments.length * padded);
  segments.forEach((_, r) => withRows(x, starts[r], own(r), (part) => vectors.set(net.superpositionV(part, o.objective), r * padded)));
  const grads = net.scoresOfVectors(vectors, segments.length);
  const width = net.bank.slotCapacity;
  return segments.flatMap((n, r) => new Array(n).fill(decideFromGradients(grads.subarray(r * width, (r + 1) * width), slots, o.epsilon)));
}

/** The one example of `x` as plain floats, where the pass runs on the CPU without tfjs (superposed-pass.ts). */
function singleExample(net: SupermaskNetwork, x: tf.Tensor2D): Float32Array | null {
  return x.shape[0] === 1 && !net.onDevice ? (x.dataSync() as Float32Array) : null;
}

function binarySearch(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions): TaskDecision {
  if (net.onDevice) return deviceBinarySearch(net, slots, x, o);
  // Each round scores only its candidates (packed into a candidate bank) over their superposition, whose
  // per-weight count is the last round's minus the masks it dropped: k/2 + k/4 + … masks counted in all.
  const one = singleExample(net, x);
  const gradients = (counts: ArrayLike<number>, n: number, bank?: CandidateBank): Float32Array => {
    if (one) return net.scoresFromCounts(counts, n, one, o.objective, bank);
    const layers = net.countsSuperposition(Float32Array.from(counts), n);
    try {
      return net.slotGradients(layers, x, o.objective, false, bank);
    } finally {
      disposeDenseLayers(layers);
    }
  };
  const first = one ? gradients(net.bank.count, slots.length) : net.gradientsOver(x, o.objective, false);
  const verdict = decideFromGradients(first, slots, o.epsilon);
  const counts = Float32Array.from(net.bank.count);
  const kept = keepLowerHalf(slots, first);
  net.subtractCounts(counts, net.bank.raw, without(slots, kept));
  let candidates = CandidateBank.of(net.kernels, net.words, net.candidateScratch, net.bank, kept);
  while (candidates.slots.length > 1) {
    const positions = Int32Array.from(candidates.slots.keys());
    const keep = keepLowerHalf(positions, gradients(counts, positions.length, candidates));
    net.subtractCounts(counts, candidates.raw, without(positions, keep));
    candidates = candidates.narrow(keep);
  }
  const slot = candidates.slots[0];
  return { slot, confidence: nu(first, slots)[slots.indexOf(slot)], unknown: verdict.unknown };
}

/** On a device the bank stays there: every round superposes its candidates and scores them in place. */
function deviceBinarySearch(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions): TaskDecision {
  const first = net.gradientsOver(x, o.objective, false);
  const verdict = decideFromGradients(first, slots, o.epsilon);
  let half = keepLowerHalf(slots, first);
  while (half.length > 1) half = keepLowerHalf(half, net.gradientsOver(x, o.objective, false, half));
  return { slot: half[0], confidence: nu(first, slots)[slots.indexOf(half[0])], unknown: verdict.unknown };
}

/** The members of `all` (ascending) that are not in `kept` (ascending). */
function without(all: Int32Array, kept: Int32Array): Int32Array {
  const out = new Int32Array(all.length - kept.length);
  for (let i = 0, j = 0, n = 0; i < all.length; i++) {
    if (j < kept.length && kept[j] === all[i]) j++;
    else out[n++] = all[i];
  }
  return out;
}

/** ν = softmax(-g) over the stored slots; the winner, its ν, and the unknown test. */
export function decideFromGradients(grads: Float32Array, slots: Int32Array, epsilon: number): TaskDecision {
  const v = nu(grads, slots);
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return { slot: slots[best], confidence: v[best], unknown: slots.length > 1 && slots.length * v[best] < 1 + epsilon };
}

function nu(grads: Float32Array, slots: Int32Array): Float64Array {
  const v = new Float64Array(slots.length);
  let max = -Infinity;
  for (let i = 0; i < slots.length; i++) max = Math.max(max, -grads[slots[i]]);
  let sum = 0;
  for (let i = 0; i < slots.length; i++) sum += v[i] = Math.exp(-grads[slots[i]] - max);
  for (let i = 0; i < slots.length; i++) v[i] /= sum;
  return v;
}

/**
 * The ⌈n/2⌉ candidates with the lowest gradient (those that lower the objective most), in increasing order;
 * `candidates` index `grads` (slots of the bank, or positions in a candidate bank, which follow slot order).
 */
function keepLowerHalf(candidates: Int32Array, grads: Float32Array): Int32Array {
  const order = Array.from(candidates).sort((a, b) => grads[a] - grads[b] || a - b);
  return Int32Array.from(order.slice(0, Math.ceil(candidates.length / 2))).sort();
}

function withRows<T>(x: tf.Tensor2D, row: number, count: number, fn: (rows: tf.Tensor2D) => T): T {
  const slice = tf.slice(x, [row, 0], [count, -1]);
  try {
    return fn(slice);
  } finally {
    slice.dispose();
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
