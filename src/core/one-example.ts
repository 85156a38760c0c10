// A task decided from one example, refined by exact forwards. The one-shot gradient ranks all k masks from one
// pass over their superposition; from a single image its top-1 is sometimes a foreign mask while the true one is
// second or third (on the 250-task LeNet served by default: top-1 right for 98.6% of first examples, top-4 for
// 99.7%). The exact forward of each of the gradient's top `rerank` masks, scored by the fit of unknown-score.ts,
// chooses among them. The same forwards give the model's calibrated unknown rule its best fit, so a call that
// uses both pays for them once.
import type { TaskDecision } from './task-inference.ts';
import { fitCandidates, isUnknownByFit, type OneExampleRule } from './unknown-score.ts';

/** What refines a decision made from one example: exact fits of that example, and the model's unknown rule if any. */
export interface OneExampleCheck {
  rule?: OneExampleRule;
  /** The fit (unknown-score.ts) of example `row` of the call under each of `slots`, one exact forward each. */
  fits: (slots: Int32Array, row: number) => Float64Array;
}

/**
 * `d`, decided from `grads` (∂obj/∂α over `slots`) for example `row`: with `rerank` > 1 the best-fitting of the
 * gradient's top `rerank` masks instead of its top-1; with the model's rule, unknown by the best fit of the
 * rule's top candidates and the chosen mask (what the rule was calibrated on). `rerank` 1 keeps `d.slot`.
 */
export function refineOneExample(d: TaskDecision, grads: Float32Array, slots: Int32Array, row: number, one: OneExampleCheck, rerank: number): TaskDecision {
  if (rerank <= 1 && !one.rule) return d;
  const forRule = one.rule?.candidates ?? 0;
  const candidates = fitCandidates(grads, slots, Math.max(rerank, forRule), d.slot);
  const fits = one.fits(candidates, row);
  const pick = rerank > 1 ? bestOfFirst(fits, Math.min(rerank, candidates.length)) : candidates.indexOf(d.slot);
  const slot = candidates[pick];
  // ν = softmax(−g): the chosen slot's ν from the gradient's winner's, without another pass over k.
  const chosen = slot === d.slot ? d : { ...d, slot, confidence: d.confidence * Math.exp(grads[d.slot] - grads[slot]) };
  if (!one.rule) return chosen;
  let fit = fits[pick];
  for (let i = 0; i < Math.min(forRule, candidates.length); i++) fit = Math.max(fit, fits[i]);
  return { ...chosen, fit, unknown: isUnknownByFit(fit, one.rule) };
}

/** Index of the highest of `values[0..n)`, the first on ties (the gradient's order). */
export function bestOfFirst(values: ArrayLike<number>, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[i] > values[best]) best = i;
  return best;
}
