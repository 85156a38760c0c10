// Is one example from a task the model knows? The paper's test (k · max ν < 1 + ε) needs the whole batch:
// from one image, ν of a known task and of an unseen one overlap. This score looks at what the masks the
// one-shot gradient ranks highest actually output for the example: a mask trained on its task puts the
// example's mass on the l real classes and keeps the s − l superfluous outputs low (the G objective's idea);
// a mask shown an unseen permutation does neither. The score is the best fit over those few candidates,
// so a task the gradient ranks second or third is still found.
//   fit(z) = logsumexp(z_real) − logsumexp(z_superfluous)   when the model has superfluous outputs (s > l)
//   fit(z) = logsumexp(z_real)                               (the energy) when it has none
// Unknown when the best fit is below a threshold calibrated per model (`supsup eval --calibrate-unknown`).

/** Which fit is used: the margin of the real classes over the superfluous outputs, or the energy of the real ones. */
export type FitScore = 'real-vs-superfluous' | 'real-energy';
export const FIT_SCORES: readonly FitScore[] = ['real-vs-superfluous', 'real-energy'];

/** Masks whose exact forward is scored: the gradient's top candidates (plus the chosen mask, when not among them). */
export const ONE_EXAMPLE_CANDIDATES = 4;

/** A model's calibrated rule for a decision made from one example. */
export interface OneExampleRule {
  score: FitScore;
  candidates: number;
  /** Unknown when the best fit is below this. */
  threshold: number;
}

/** The fit a model with `outputs` logits of which `classes` are real is scored by. */
export function fitScoreFor(outputs: number, classes: number): FitScore {
  return outputs > classes ? 'real-vs-superfluous' : 'real-energy';
}

/** The fit of one example's logits `z` (the first `classes` are the real classes). */
export function fitOf(z: ArrayLike<number>, classes: number, score: FitScore): number {
  const real = logSumExp(z, 0, classes);
  if (score === 'real-energy') return real;
  if (z.length <= classes) throw new RangeError('real-vs-superfluous needs superfluous outputs (s > l)');
  return real - logSumExp(z, classes, z.length);
}

/** The fit of each candidate row of `logits` (rows × outputs, row-major). */
export function fitsOf(logits: Float32Array, outputs: number, classes: number, score: FitScore): Float64Array {
  if (logits.length === 0 || logits.length % outputs !== 0) throw new RangeError(`logits must be whole rows of ${outputs}`);
  const fits = new Float64Array(logits.length / outputs);
  for (let r = 0; r < fits.length; r++) fits[r] = fitOf(logits.subarray(r * outputs, (r + 1) * outputs), classes, score);
  return fits;
}

/**
 * The `count` slots whose gradient ∂obj/∂α is lowest (those the one-shot step ranks highest), best first,
 * then `chosen` when it is not among them (binary search may choose outside the one-shot top).
 */
export function fitCandidates(grads: Float32Array, slots: Int32Array, count: number, chosen: number): Int32Array {
  const top: number[] = [];
  for (const slot of slots) {
    // Insertion into a short sorted list: count is a handful, k can be thousands.
    let i = top.length;
    while (i > 0 && grads[top[i - 1]] > grads[slot]) i--;
    if (i < count) {
      top.splice(i, 0, slot);
      if (top.length > count) top.pop();
    }
  }
  if (!top.includes(chosen)) top.push(chosen);
  return Int32Array.from(top);
}

export function isUnknownByFit(fit: number, rule: OneExampleRule): boolean {
  return !(fit >= rule.threshold);
}

function logSumExp(z: ArrayLike<number>, from: number, to: number): number {
  let max = -Infinity;
  for (let i = from; i < to; i++) max = Math.max(max, z[i]);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = from; i < to; i++) sum += Math.exp(z[i] - max);
  return max + Math.log(sum);
}
