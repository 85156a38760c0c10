import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Bundled models, in order of preference: PermutedMNIST on the full MNIST (the paper's data) trained at lr 3e-4, the
 * same at the authors' lr 1e-4, the older one trained on 10,000 digits, else the small random example.
 */
export const DEFAULT_MODEL_DIRS = [
  'models/permuted-mnist60k-lenet-lr3e-4',
  'models/permuted-mnist60k-lenet',
  'models/permuted-mnist-lenet',
  'models/example-lenet',
];
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The first bundled model that exists (absolute path), or undefined. */
export function defaultModelDir(): string | undefined {
  return DEFAULT_MODEL_DIRS.map((d) => join(PROJECT_ROOT, d)).find((d) => existsSync(d));
}
