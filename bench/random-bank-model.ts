// The model of the REST scale benches (rest-scale.ts, given-rest.ts): k tasks `t0` … `t{k-1}` whose masks are
// random words (density 0.5), written to a model directory in batches of 500.
import { type Architecture, MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { maskWords, weightCount } from '../src/core/architecture.ts';
import type { Xoshiro128 } from '../src/core/prng.ts';
import { appendTasks, createModel } from '../src/model/model-store.ts';

export async function writeRandomBankModel(dir: string, architecture: Architecture, k: number, rng: Xoshiro128): Promise<void> {
  await createModel(dir, { architecture, seed: 1, normalization: MNIST_NORMALIZATION });
  for (let t0 = 0; t0 < k; t0 += 500) {
    const items = [];
    for (let t = t0; t < Math.min(k, t0 + 500); t++) {
      items.push({ task: { id: `t${t}`, name: `random ${t}`, transform: { kind: 'identity' as const } }, mask: randomBankMask(architecture, rng) });
    }
    await appendTasks(dir, items);
  }
}

/** One mask of random words (density 0.5), its padding bits clear: the masks of these benches' banks. */
export function randomBankMask(architecture: Architecture, rng: Xoshiro128): Uint32Array {
  const words = maskWords(architecture), pad = words * 32 - weightCount(architecture);
  const mask = new Uint32Array(words);
  for (let j = 0; j < words; j++) mask[j] = rng.nextUint32();
  if (pad > 0) mask[words - 1] &= 0xffffffff >>> pad;
  return mask;
}
