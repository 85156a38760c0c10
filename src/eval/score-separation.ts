// How well a score separates two samples, higher for `known` than for `unknown`: ROC AUC, the rates flagged
// below a threshold, and the threshold a calibration stores.

/** P(a known score > an unknown one), ties counting one half: the area under the ROC curve. */
export function rocAuc(known: ArrayLike<number>, unknown: ArrayLike<number>): number {
  if (known.length === 0 || unknown.length === 0) throw new RangeError('ROC AUC needs scores on both sides');
  const k = Float64Array.from(known).sort();
  const u = Float64Array.from(unknown).sort();
  // For each known score: the unknown scores below it, and those equal to it (two pointers over sorted arrays).
  let below = 0, equalEnd = 0, sum = 0;
  for (const s of k) {
    while (below < u.length && u[below] < s) below++;
    equalEnd = Math.max(equalEnd, below);
    while (equalEnd < u.length && u[equalEnd] === s) equalEnd++;
    sum += below + (equalEnd - below) / 2;
  }
  return sum / (k.length * u.length);
}

/** Fraction of `scores` below `threshold` (flagged unknown). */
export function flaggedBelow(scores: ArrayLike<number>, threshold: number): number {
  if (scores.length === 0) return 0;
  let n = 0;
  for (let i = 0; i < scores.length; i++) if (!(scores[i] >= threshold)) n++;
  return n / scores.length;
}

export interface ChosenThreshold {
  threshold: number;
  /** In-sample rates at it: unseen-task scores flagged, and known-task scores wrongly flagged. */
  unknownFlagged: number;
  knownFlagged: number;
}

/**
 * The threshold that maximises unknown flagged − known flagged (ties: fewer known flagged) among those that flag
 * at most `maxKnownFlagged` of the known scores, half-way between neighbouring observed scores, so a clean
 * separation puts it in the middle of the gap between the two samples. Flagging nothing is always allowed.
 */
export function chooseThreshold(known: ArrayLike<number>, unknown: ArrayLike<number>, maxKnownFlagged = 1): ChosenThreshold {
  if (known.length === 0 || unknown.length === 0) throw new RangeError('a threshold needs scores on both sides');
  const values = [...new Set([...Array.from(known), ...Array.from(unknown)])].filter(Number.isFinite).sort((a, b) => a - b);
  if (values.length === 0) throw new RangeError('a threshold needs finite scores');
  let best: ChosenThreshold & { gain: number } = { threshold: values[0], unknownFlagged: flaggedBelow(unknown, values[0]), knownFlagged: flaggedBelow(known, values[0]), gain: -Infinity };
  best.gain = best.unknownFlagged - best.knownFlagged;
  for (let i = 1; i < values.length; i++) {
    const threshold = (values[i - 1] + values[i]) / 2;
    const unknownFlagged = flaggedBelow(unknown, threshold), knownFlagged = flaggedBelow(known, threshold);
    const gain = unknownFlagged - knownFlagged;
    if (knownFlagged > maxKnownFlagged) continue;
    if (gain > best.gain + 1e-12 || (Math.abs(gain - best.gain) <= 1e-12 && knownFlagged < best.knownFlagged)) {
      best = { threshold, unknownFlagged, knownFlagged, gain };
    }
  }
  const { gain: _gain, ...chosen } = best;
  return chosen;
}
