// Picks the MaskKernels implementation: the native addon when it is built and loads, TypeScript otherwise.
import type { MaskKernels } from './mask-kernels.ts';
import { loadNativeKernels } from './native-kernels.ts';
import { typescriptKernels } from './typescript-kernels.ts';

export type KernelPreference = 'auto' | 'native' | 'typescript';

/**
 * 'auto': native if available, else TypeScript (the reason says why). 'typescript': always TypeScript.
 * 'native': native or an Error carrying the one-line reason (an explicit request is not silently downgraded).
 */
export function selectKernels(preference: KernelPreference = 'auto'): { kernels: MaskKernels; reason: string } {
  if (preference === 'typescript') return { kernels: typescriptKernels, reason: 'typescript kernels requested' };
  if (preference !== 'auto' && preference !== 'native') {
    throw new RangeError(`kernel preference must be 'auto', 'native' or 'typescript', not '${String(preference)}'`);
  }
  const native = loadNativeKernels();
  if (native.kernels) return { kernels: native.kernels, reason: native.reason };
  if (preference === 'native') throw new Error(`native kernels requested but unavailable: ${native.reason}`);
  return { kernels: typescriptKernels, reason: `${native.reason}; using typescript kernels` };
}
