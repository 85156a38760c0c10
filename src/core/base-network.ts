import { type Architecture, layerShapes } from './architecture.ts';
import { Xoshiro128 } from './prng.ts';

/**
 * The frozen base network: signed Kaiming constant weights, each ±sqrt(2 / fan_in).
 * Signs are drawn from the PRNG in flat weight order, 32 per uint32 output, least significant bit first;
 * bit 1 means +c. Nothing here is ever stored: the same (architecture, seed) always gives the same weights.
 */
export interface BaseNetwork {
  architecture: Architecture;
  seed: number;
  /** One Float32Array per layer, [in][out] row-major. */
  layers: Float32Array[];
}

export function generateBaseNetwork(architecture: Architecture, seed: number): BaseNetwork {
  const rng = new Xoshiro128(seed);
  const layers: Float32Array[] = [];
  let bits = 0;
  let available = 0;
  for (const shape of layerShapes(architecture)) {
    const c = Math.fround(Math.sqrt(2 / shape.in));
    const w = new Float32Array(shape.in * shape.out);
    for (let i = 0; i < w.length; i++) {
      if (available === 0) {
        bits = rng.nextUint32();
        available = 32;
      }
      w[i] = bits & 1 ? c : -c;
      bits >>>= 1;
      available--;
    }
    layers.push(w);
  }
  return { architecture, seed, layers };
}
