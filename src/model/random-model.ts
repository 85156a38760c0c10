// Models with random masks, for examples and tests until trained masks exist. Each mask bit is 1 with
// probability `density`: bit = (rng.nextUint32() < density · 2^32), drawn in flat weight order, one task
// after another, from Xoshiro128(maskSeed). The default maskSeed (seed XOR 0x6d61736b, "mask") keeps the
// stream apart from the base network's.
import { invalid } from '../contract/errors.ts';
import { type Architecture, maskWords, weightCount } from '../core/architecture.ts';
import { Xoshiro128 } from '../core/prng.ts';
import { MNIST_NORMALIZATION, type Normalization } from '../contract/model.ts';
import type { TaskSpec } from '../contract/task.ts';
import type { Manifest } from './manifest.ts';
import { appendTasks, createModel, readManifest } from './model-store.ts';

export interface RandomModelOptions {
  architecture: Architecture;
  /** Base network seed. */
  seed: number;
  /** A task count (ids random-0, random-1, …, identity transform) or the tasks themselves. */
  tasks: number | TaskSpec[];
  /** Probability that a mask bit is 1, in [0, 1]. */
  density: number;
  /** Defaults to MNIST's mean 0.1307, std 0.3081. */
  normalization?: Normalization;
  maskSeed?: number;
}

/** One random canonical mask (padding bits zero). */
export function randomMask(architecture: Architecture, density: number, rng: Xoshiro128): Uint32Array {
  if (!(density >= 0 && density <= 1)) throw invalid(`density must be in [0, 1], got ${density}`);
  const p = weightCount(architecture);
  const mask = new Uint32Array(maskWords(architecture));
  const threshold = density * 4294967296;
  for (let w = 0; w < p; w++) if (rng.nextUint32() < threshold) mask[w >>> 5] |= 1 << (w & 31);
  return mask;
}

/** Creates `dir` as a model holding random masks; returns its manifest. */
export async function writeRandomModel(dir: string, options: RandomModelOptions): Promise<Manifest> {
  const { architecture, seed, density } = options;
  const tasks: TaskSpec[] =
    typeof options.tasks === 'number'
      ? Array.from({ length: options.tasks }, (_, i) => ({
          id: `random-${i}`,
          name: `Random mask ${i}`,
          description: `Random mask of density ${density}: a placeholder until trained masks exist`,
          transform: { kind: 'identity' },
        }))
      : options.tasks;
  const rng = new Xoshiro128(options.maskSeed ?? (seed ^ 0x6d61736b) >>> 0);
  const manifest = await createModel(dir, { architecture, seed, normalization: options.normalization ?? MNIST_NORMALIZATION });
  if (tasks.length === 0) return manifest;
  await appendTasks(dir, tasks.map((task) => ({ task, mask: randomMask(architecture, density, rng) })));
  return readManifest(dir);
}
