// Task inference (GN / NN scenarios): which stored mask explains this data?
// One-shot: superpose all k masks with α_i = 1/k, take ∂obj/∂α by one backward pass, pick argmax(-∂obj/∂α).
// Binary: repeat on the half of the candidates whose gradient is lowest until one is left (⌈log2 k⌉ rounds).
import * as tf from '@tensorflow/tfjs-core';
import type { InferenceOptions } from '../contract/classify.ts';
import { noTasks } from '../contract/errors.ts';
import { type SupermaskNetwork } from './supermask-network.ts';
import { CandidateBank } from './candidate-bank.ts';
import { disposeDenseLayers } from './masked-mlp.ts';
import { fitCandidates, isUnknownByFit, type OneExampleRule } from './unknown-score.ts';

export interface TaskDecision {
  slot: number;
  /** ν of the chosen slot over the full superposition. */
  confidence: number;
  /**
   * No stored mask fits. From one example with the model's calibrated rule: the best fit of the top candidates
   * is below its threshold (unknown-score.ts); otherwise k · max ν < 1 + ε. Always false when k = 1.
   */
  unknown: boolean;
  /** The best fit, when the one-example rule decided. */
  fit?: number;
}

/** The model's one-example rule and how to score an example (row of the call's inputs) under some slots. */
export interface OneExampleCheck {
  rule: OneExampleRule;
  fit: (slots: Int32Array, row: number) => number;
}

/** Applies the one-example rule to a decision made from row `row`, given the gradients it was made from. */
type RowCheck = (d: TaskDecision, grads: Float32Array, row: number) => TaskDecision;

/** One decision per example of `x` (already normalised). Throws when no task is stored. */
export function inferTasks(net: SupermaskNetwork, x: tf.Tensor2D, options: InferenceOptions, oneExample?: OneExampleCheck): TaskDecision[] {
  const slots = net.bank.occupiedSlots();
  if (slots.length === 0) throw noTasks();
  const batch = x.shape[0];
  if (slots.length === 1) return new Array(batch).fill({ slot: slots[0], confidence: 1, unknown: false });

  const fromOne = options.decideFrom !== 'batch' || batch === 1;
  const check: RowCheck | undefined = oneExample && fromOne ? (d, grads, row) => checkOne(d, grads, slots, row, oneExample) : undefined;
  if (options.decideFrom === 'each') {
    if (options.method === 'one-shot') return oneShot(net, slots, x, options, true, check);
    return range(batch).map((e) => withRow(x, e, (row) => binarySearch(net, slots, row, options, check && ((d, g) => check(d, g, e)))));
  }
  // Deciding from the first example or from a batch of one: the row that decides is row 0.
  const decide = (data: tf.Tensor2D) =>
    options.method === 'one-shot' ? oneShot(net, slots, data, options, false, check)[0] : binarySearch(net, slots, data, options, check && ((d, g) => check(d, g, 0)));
  const decision = options.decideFrom === 'first' ? withRow(x, 0, decide) : decide(x);
  return new Array(batch).fill(decision);
}

function oneShot(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, perExample: boolean, check?: RowCheck): TaskDecision[] {
  const grads = net.gradientsOver(x, o.objective, perExample);
  const width = net.bank.slotCapacity;
  return range(grads.length / width).map((r) => {
    const g = grads.subarray(r * width, (r + 1) * width);
    const d = decideFromGradients(g, slots, o.epsilon);
    return check ? check(d, g, r) : d;
  });
}

function checkOne(d: TaskDecision, grads: Float32Array, slots: Int32Array, row: number, one: OneExampleCheck): TaskDecision {
  const fit = one.fit(fitCandidates(grads, slots, one.rule.candidates, d.slot), row);
  return { ...d, fit, unknown: isUnknownByFit(fit, one.rule) };
}

function binarySearch(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, check?: (d: TaskDecision, grads: Float32Array) => TaskDecision): TaskDecision {
  const first = net.gradientsOver(x, o.objective, false);
  const decided = (d: TaskDecision) => (check ? check(d, first) : d);
  const verdict = decideFromGradients(first, slots, o.epsilon);
  // Round 1 (k/2 candidates, spread over nearly every block) is scored in the bank itself; later rounds in
  // packed candidate banks, or on the device when the network lives on one.
  let half = keepLowerHalf(slots, first);
  if (half.length > 1) half = keepLowerHalf(half, net.gradientsOver(x, o.objective, false, half));
  if (net.onDevice) {
    while (half.length > 1) half = keepLowerHalf(half, net.gradientsOver(x, o.objective, false, half));
    return decided({ slot: half[0], confidence: nu(first, slots)[slots.indexOf(half[0])], unknown: verdict.unknown });
  }
  let candidates = CandidateBank.of(net.kernels, net.words, net.candidateScratch, net.bank, half);
  while (candidates.slots.length > 1) {
    const layers = net.countsSuperposition(candidates.counts, candidates.slots.length);
    try {
      const grads = net.slotGradients(layers, x, o.objective, false, candidates);
      candidates = candidates.narrow(keepLowerHalf(Int32Array.from(candidates.slots.keys()), grads));
    } finally {
      disposeDenseLayers(layers);
    }
  }
  const slot = candidates.slots[0];
  return decided({ slot, confidence: nu(first, slots)[slots.indexOf(slot)], unknown: verdict.unknown });
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

function withRow<T>(x: tf.Tensor2D, row: number, fn: (row: tf.Tensor2D) => T): T {
  const slice = tf.slice(x, [row, 0], [1, -1]);
  try {
    return fn(slice);
  } finally {
    slice.dispose();
  }
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
