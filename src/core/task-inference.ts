// Task inference (GN / NN scenarios): which stored mask explains this data?
// One-shot: superpose all k masks with α_i = 1/k, take ∂obj/∂α by one backward pass, pick argmax(-∂obj/∂α).
// Binary: repeat on the half of the candidates whose gradient is lowest until one is left (⌈log2 k⌉ rounds).
import { tf } from './tfjs.ts';
import type { InferenceOptions } from '../contract/classify.ts';
import { noTasks } from '../contract/errors.ts';
import { type SupermaskNetwork } from './supermask-network.ts';
import { CandidateBank } from './candidate-bank.ts';
import { disposeDenseLayers } from './masked-mlp.ts';
import { type OneExampleCheck, refineOneExample } from './one-example.ts';

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

/** Refines a decision made from row `row` alone (one-example.ts), given the gradients it was made from. */
type RowCheck = (d: TaskDecision, grads: Float32Array, row: number) => TaskDecision;

/**
 * One decision per example of `x` (already normalised). Throws when no task is stored. `oneExample`: exact
 * fits, for decisions made from one example (re-ranked by them per `options.rerank` when one-shot, and judged
 * by the model's calibrated unknown-task rule when it has one). `segments` (merged
 * calls, runtime/merge.ts): one-shot decisions per segment of rows, as if each segment were its own call.
 */
export function inferTasks(
  net: SupermaskNetwork,
  x: tf.Tensor2D,
  options: InferenceOptions,
  oneExample?: OneExampleCheck,
  segments?: number[],
): TaskDecision[] {
  const slots = net.bank.occupiedSlots();
  if (slots.length === 0) throw noTasks();
  const batch = x.shape[0];
  if (slots.length === 1) return new Array(batch).fill({ slot: slots[0], confidence: 1, unknown: false });
  // Binary search's choice is not the gradient's top: only one-shot decisions are re-ranked.
  const rerank = options.method === 'one-shot' ? options.rerank : 1;
  const rowCheck: RowCheck | undefined =
    oneExample && (rerank > 1 || oneExample.rule) ? (d, grads, row) => refineOneExample(d, grads, slots, row, oneExample, rerank) : undefined;
  if (segments && segments.length > 1) return oneShotPerSegment(net, slots, x, options, segments, oneExample, rowCheck);

  const check = options.decideFrom !== 'batch' || batch === 1 ? rowCheck : undefined;
  if (options.decideFrom === 'each') {
    if (options.method === 'one-shot') return oneShot(net, slots, x, options, true, check);
    return range(batch).map((e) => withRows(x, e, 1, (row) => binarySearch(net, slots, row, options, check && ((d, g) => check(d, g, e)))));
  }
  // Deciding from the first example or from a batch of one: the row that decides is row 0.
  const decide = (data: tf.Tensor2D) =>
    options.method === 'one-shot' ? oneShot(net, slots, data, options, false, check)[0] : binarySearch(net, slots, data, options, check && ((d, g) => check(d, g, 0)));
  const decision = options.decideFrom === 'first' ? withRows(x, 0, 1, decide) : decide(x);
  return new Array(batch).fill(decision);
}

function oneShot(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, perExample: boolean, check?: RowCheck): TaskDecision[] {
  const one = perExample ? null : singleExample(net, x);
  const grads = one
    ? net.scoresFromCounts(net.bank.count, slots.length, one, o.objective)
    : ((perExample ? splitRows(net, slots, x, o) : null) ?? net.gradientsOver(x, o.objective, perExample));
  const width = net.bank.slotCapacity;
  return range(grads.length / width).map((r) => {
    const g = grads.subarray(r * width, (r + 1) * width);
    const d = decideFromGradients(g, slots, o.epsilon);
    return check ? check(d, g, r) : d;
  });
}

/**
 * Per-example scores of `x`, each row in its own background-split pass (scoresFromCounts), where every row splits:
 * measured faster than one fused pass over all the rows, which reads every word of the bank for each of them.
 * Null where a row does not split (the fused pass then serves them all) or the bank is on a device.
 */
function splitRows(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions): Float32Array | null {
  if (net.onDevice) return null;
  const data = x.dataSync() as Float32Array, n = x.shape[1];
  const rows = Array.from({ length: x.shape[0] }, (_, r) => data.subarray(r * n, (r + 1) * n));
  const backgrounds = rows.map((row) => net.splitBackground(row));
  if (backgrounds.includes(0)) return null;
  const width = net.bank.slotCapacity, out = new Float32Array(rows.length * width);
  rows.forEach((row, r) => out.set(splitScores(net, slots, row, backgrounds[r], o), r * width));
  return out;
}

/** The scores of one example over every stored mask, split at its background x0 (≠ 0: splitBackground). */
function splitScores(net: SupermaskNetwork, slots: Int32Array, x: Float32Array, x0: number, o: InferenceOptions): Float32Array {
  return net.scoresFromCounts(net.bank.count, slots.length, x, o.objective, net.bank, x0);
}

/**
 * One V row per segment (its first example or all of it), then one bank pass for all the rows; a segment decided
 * from one example whose scores split takes its own split pass instead, as the call alone would have.
 */
function oneShotPerSegment(
  net: SupermaskNetwork,
  slots: Int32Array,
  x: tf.Tensor2D,
  o: InferenceOptions,
  segments: number[],
  oneExample?: OneExampleCheck,
  check?: RowCheck,
): TaskDecision[] {
  const starts = segments.map((_, r) => segments.slice(0, r).reduce((a, b) => a + b, 0));
  const own = (r: number) => (o.decideFrom === 'first' ? 1 : segments[r]);
  if (net.onDevice) {
    // Each segment alone; its rows are numbered from its start in the one-example rule's view of the call.
    const shifted = (start: number): OneExampleCheck | undefined => oneExample && { rule: oneExample.rule, fits: (s, row) => oneExample.fits(s, start + row) };
    return segments.flatMap((n, r) => withRows(x, starts[r], n, (part) => inferTasks(net, part, o, shifted(starts[r]))));
  }
  const data = x.dataSync() as Float32Array, inputs = x.shape[1];
  const first = (r: number) => data.subarray(starts[r] * inputs, (starts[r] + 1) * inputs);
  // A segment's own split pass, where it decides from one example that splits (background ≠ 0).
  const backgrounds = segments.map((_, r) => (own(r) === 1 ? net.splitBackground(first(r)) : 0));
  const merged = segments.map((_, r) => r).filter((r) => backgrounds[r] === 0);
  const padded = net.words * 32, width = net.bank.slotCapacity;
  const vectors = net.vRows(merged.length);
  merged.forEach((r, m) => withRows(x, starts[r], own(r), (part) => net.superpositionV(part, o.objective, vectors.subarray(m * padded, (m + 1) * padded))));
  const mergedGrads = merged.length > 0 ? net.scoresOfVectors(vectors, merged.length) : new Float32Array(0);
  const row = new Map(merged.map((r, m) => [r, m]));
  const gradsOf = (r: number) =>
    backgrounds[r] !== 0 ? splitScores(net, slots, first(r), backgrounds[r], o) : mergedGrads.subarray(row.get(r)! * width, (row.get(r)! + 1) * width);
  return segments.flatMap((n, r) => {
    const g = gradsOf(r);
    const d = decideFromGradients(g, slots, o.epsilon);
    // A segment decided from one example gets the one-example rule, as the call alone would have.
    return new Array(n).fill(check && own(r) === 1 ? check(d, g, starts[r]) : d);
  });
}

/** The one example of `x` as plain floats, where the pass runs on the CPU without tfjs (superposed-pass.ts). */
function singleExample(net: SupermaskNetwork, x: tf.Tensor2D): Float32Array | null {
  return x.shape[0] === 1 && !net.onDevice ? (x.dataSync() as Float32Array) : null;
}

function binarySearch(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, check?: (d: TaskDecision, grads: Float32Array) => TaskDecision): TaskDecision {
  if (net.onDevice) return deviceBinarySearch(net, slots, x, o, check);
  // Each round scores only its candidates (packed into a candidate bank) over their superposition, whose
  // per-weight count the gather that packed them counted: k/2 + k/4 + … masks copied and counted in all.
  // From one example with a background, only the words it reaches (live-words.ts).
  const one = singleExample(net, x);
  const gradients = (counts: Uint16Array | Float32Array, n: number, bank?: CandidateBank): Float32Array => {
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
  const live = one && net.liveWords(one);
  let candidates = CandidateBank.of(net.kernels, net.words, net.candidateScratch, net.bank, keepLowerHalf(slots, first), live ?? undefined);
  while (candidates.slots.length > 1) {
    const positions = Int32Array.from(candidates.slots.keys());
    candidates = candidates.narrow(keepLowerHalf(positions, gradients(candidates.counts, positions.length, candidates)));
  }
  const slot = candidates.slots[0];
  const d = { slot, confidence: nu(first, slots)[slots.indexOf(slot)], unknown: verdict.unknown };
  return check ? check(d, first) : d;
}

/** On a device the bank stays there: every round superposes its candidates and scores them in place. */
function deviceBinarySearch(net: SupermaskNetwork, slots: Int32Array, x: tf.Tensor2D, o: InferenceOptions, check?: (d: TaskDecision, grads: Float32Array) => TaskDecision): TaskDecision {
  const first = net.gradientsOver(x, o.objective, false);
  const verdict = decideFromGradients(first, slots, o.epsilon);
  let half = keepLowerHalf(slots, first);
  while (half.length > 1) half = keepLowerHalf(half, net.gradientsOver(x, o.objective, false, half));
  const d = { slot: half[0], confidence: nu(first, slots)[slots.indexOf(half[0])], unknown: verdict.unknown };
  return check ? check(d, first) : d;
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
  // The ⌈n/2⌉-th lowest gradient, then every candidate below it and, in increasing order, as many of those
  // equal to it as fill the half: what sorting by (gradient, candidate) and taking the first half gives, without
  // a comparator sort (~1 ms of k = 2500's search). A NaN gradient ranks last.
  const n = candidates.length, keep = Math.ceil(n / 2);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = grads[candidates[i]];
    values[i] = g === g ? g : Infinity;
  }
  const threshold = values.slice().sort()[keep - 1];
  let ties = keep;
  for (let i = 0; i < n; i++) if (values[i] < threshold) ties--;
  const kept = new Int32Array(keep);
  for (let i = 0, m = 0; i < n; i++) {
    if (values[i] < threshold || (values[i] === threshold && ties-- > 0)) kept[m++] = candidates[i];
  }
  return kept;
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
