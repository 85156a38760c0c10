// From real-valued scores to the canonical packed mask (see core/mask-bank.ts): weight w is bit (w & 31)
// of word (w >>> 5), flat weight order = layers in order, each [in][out] row-major.
//
// GN-style masks keep every weight whose score is ≥ 0; GG-style masks keep the top `density` fraction of
// |S| within each layer (edge-popup).
import { popcount } from '../model/mask-file.ts';

export type MaskStyle = 'gn' | 'gg';
export const MASK_STYLES: readonly MaskStyle[] = ['gn', 'gg'];

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

/** Packs per-layer keep decisions (1 = keep) into the canonical mask of `words` 32-bit words. */
export function packMask(layers: Uint8Array[], words: number): Uint32Array {
  const mask = new Uint32Array(words);
  let w = 0;
  for (const keep of layers) {
    for (let i = 0; i < keep.length; i++, w++) if (keep[i]) mask[w >>> 5] |= 1 << (w & 31);
  }
  if (w > words * 32) throw new RangeError(`${w} weights do not fit in ${words} words`);
  return mask;
}

/** Fraction of the P = `weights` mask bits that are set. */
export function maskDensity(mask: Uint32Array, weights: number): number {
  return popcount(mask) / weights;
}
