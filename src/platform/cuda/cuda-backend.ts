/**
 * The `cuda` backend: our CUDA kernels hold the mask bank and the base network on the GPU and run task inference
 * and the given-task forward there; the little tensor work left (normalising inputs, the softmax of the answer)
 * stays on TensorFlow.js wasm. Picked by `--backend cuda`, and by `auto` whenever a usable device is present.
 */
import type { KernelPreference } from '../preferences.ts';
import { tf } from '../../core/tfjs.ts';
import { loadEmbeddedBackends } from '../backend.ts';
import type { MaskKernels } from '../../core/kernels/mask-kernels.ts';
import { probeCuda } from './cuda-addon.ts';
import { loadCudaKernels } from './cuda-kernels.ts';

/**
 * ok with the log line (which device, and why it is used), or not ok with the one-line reason for the fallback.
 * An explicit `cuda` request without a device is an error, as for every explicit choice.
 */
export async function cudaBackend(preference: 'auto' | 'cuda'): Promise<{ ok: boolean; reason: string }> {
  const probe = probeCuda();
  if (!probe.addon) {
    if (preference === 'cuda') throw new Error(`backend "cuda" unavailable: ${probe.reason}`);
    return { ok: false, reason: probe.reason };
  }
  loadEmbeddedBackends();
  if (!(await tf.setBackend('wasm'))) throw new Error('backend "wasm" (the cuda backend\'s tensor side) failed to initialise');
  await tf.ready();
  const why = preference === 'cuda' ? 'requested' : 'a usable CUDA device is present';
  return { ok: true, reason: `${probe.reason}; ${why}: the mask bank and the base network live on it (tfjs wasm for the rest)` };
}

/** With the cuda backend and kernels left to `auto`: the CUDA kernels. Otherwise null (the usual selection applies). */
export function cudaKernelsFor(backend: { name: string }, preference: KernelPreference): { kernels: MaskKernels; reason: string } | null {
  if (backend.name !== 'cuda' || preference !== 'auto') return null;
  const { kernels, reason } = loadCudaKernels();
  if (!kernels) throw new Error(`cuda kernels unavailable: ${reason}`);
  return { kernels, reason: `${reason}: bank resident on the device` };
}
