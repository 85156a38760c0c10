import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The bundled model served and classified by default: the trained PermutedMNIST one, else the small example. */
const MODELS = fileURLToPath(new URL('../../models/', import.meta.url));
export const DEFAULT_MODEL_DIR = ['permuted-mnist-lenet', 'example-lenet'].map((m) => MODELS + m).find((d) => existsSync(d)) ?? MODELS + 'example-lenet';
