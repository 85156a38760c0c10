/**
 * A float64 reference of the masked MLP written from the definitions alone (no tfjs, no bank, no kernels),
 * so engine results can be checked against first principles.
 */
import { type Architecture, layerShapes } from '../../src/core/architecture.ts';
import { type BaseNetwork } from '../../src/core/base-network.ts';

export function bit(mask: Uint32Array, w: number): number {
  return (mask[w >>> 5] >>> (w & 31)) & 1;
}

/** Logits of f(x; W ⊙ Σ_i α_i M^i) for one example. */
export function referenceLogits(net: BaseNetwork, masks: Uint32Array[], alpha: number[], x: ArrayLike<number>): number[] {
  let h = Array.from(x);
  const shapes = layerShapes(net.architecture);
  shapes.forEach((s, l) => {
    const out = new Array(s.out).fill(0);
    for (let i = 0; i < s.in; i++) {
      for (let j = 0; j < s.out; j++) {
        const w = s.offset + i * s.out + j;
        let m = 0;
        masks.forEach((mask, t) => (m += alpha[t] * bit(mask, w)));
        out[j] += h[i] * net.layers[l][i * s.out + j] * m;
      }
    }
    h = l + 1 < shapes.length ? out.map((v) => Math.max(0, v)) : out;
  });
  return h;
}

export function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function entropyOf(z: number[]): number {
  return -softmax(z).reduce((h, p) => h + (p > 0 ? p * Math.log(p) : 0), 0);
}

export function randomMask(words: number, weights: number, density: number, rand: () => number): Uint32Array {
  const m = new Uint32Array(words);
  for (let w = 0; w < weights; w++) if (rand() < density) m[w >>> 5] |= 1 << (w & 31);
  return m;
}

export const TINY: Architecture = { inputSize: 20, hidden: [16, 12], outputs: 8, classes: 4 };
