// Picks the implementations of the engine's and the trainer's hot loops: the native addon when it is built
// and loads, TypeScript otherwise. Both give the same answers (the tests hold them to it).
import type { MaskKernels } from '../core/kernels/mask-kernels.ts';
import { typescriptKernels } from '../core/kernels/typescript-kernels.ts';
import { type ScoreUpdate, typescriptScoreUpdate } from '../core/score-update.ts';
import { loadNativeAddon, loadNativeKernels } from './native-addon.ts';
import { KERNEL_PREFERENCES, type KernelPreference } from './preferences.ts';


/**
 * 'auto': native if available, else TypeScript (the reason says why). 'typescript': always TypeScript.
 * 'native': native or an Error carrying the one-line reason (an explicit request is not silently downgraded).
 */
export function selectKernels(preference: KernelPreference = 'auto'): { kernels: MaskKernels; reason: string } {
  if (preference === 'typescript') return { kernels: typescriptKernels, reason: 'typescript kernels requested' };
  if (!KERNEL_PREFERENCES.includes(preference)) {
    throw new RangeError(`kernel preference must be 'auto', 'native' or 'typescript', not '${String(preference)}'`);
  }
  const native = loadNativeKernels();
  if (native.kernels) return { kernels: native.kernels, reason: native.reason };
  if (preference === 'native') throw new Error(`native kernels requested but unavailable: ${native.reason}`);
  return { kernels: typescriptKernels, reason: `${native.reason}; using typescript kernels` };
}

/** Training's per-weight updates: native when the addon is built, else TypeScript (same bits either way). */
export function selectScoreUpdate(): ScoreUpdate {
  const { addon } = loadNativeAddon();
  if (!addon) return typescriptScoreUpdate;
  return {
    get name() {
      return `native-${addon.cpuPath()}`;
    },
    rmspropStep: (S, V, G, W, lr, alpha, eps) => addon.rmspropStep(S, V, G, W, lr, alpha, eps),
    maskBySign: (S, W, out) => addon.maskBySign(S, W, out),
  };
}
