import { createRequire } from 'node:module';
import { deferTfjs, tf } from '../core/tfjs.ts';
import { firstLine } from './first-line.ts';
import { cudaBackend } from './cuda/cuda-backend.ts';
import { BACKEND_PREFERENCES, type BackendPreference } from './preferences.ts';


export interface BackendChoice {
  /** The tfjs backend that runs: "tensorflow", "wasm" or "cpu"; or "cuda": our CUDA kernels, tfjs wasm for the rest. */
  name: string;
  /** One line for the log: why this backend. */
  reason: string;
}

/**
 * Picks the TensorFlow.js backend. `tensorflow` is libtensorflow through @tensorflow/tfjs-node-gpu (or
 * tfjs-node), an optional dependency that only the GPU container installs; its absence is normal and is
 * reported in one line, never a stack trace. `wasm` (SIMD, ships in its npm package) is the embedded default.
 * `defer`: an embedded backend starts at core/tfjs.ts's startTfjs, not now (the serving worker is ready before it).
 */
export async function selectBackend(preference: BackendPreference = 'auto', options: { defer?: boolean } = {}): Promise<BackendChoice> {
  if (!BACKEND_PREFERENCES.includes(preference)) {
    throw new Error(`backend must be one of ${BACKEND_PREFERENCES.join(', ')}, got "${preference}"`);
  }
  let missingCuda = '';
  if (preference === 'auto' || preference === 'cuda') {
    const cuda = await cudaBackend(preference);
    if (cuda.ok) return { name: 'cuda', reason: cuda.reason };
    missingCuda = `${cuda.reason}; `;
  }
  let missingNative = '';
  if (preference === 'auto' || preference === 'tensorflow') {
    const loaded = loadNativeTensorflow();
    if (loaded.ok && (await tf.setBackend('tensorflow'))) {
      return { name: 'tensorflow', reason: `libtensorflow via ${loaded.pkg}` };
    }
    missingNative = loaded.ok ? 'libtensorflow backend failed to initialise' : loaded.reason;
    if (preference === 'tensorflow') throw new Error(`backend "tensorflow" unavailable: ${missingNative}`);
  }
  const target = preference === 'cpu' ? 'cpu' : 'wasm';
  const start = async () => {
    loadEmbeddedBackends();
    if (!(await tf.setBackend(target))) throw new Error(`backend "${target}" failed to initialise`);
    await tf.ready();
  };
  if (options.defer) deferTfjs(target, start);
  else await start();
  const why = preference === 'auto' ? `${missingCuda}${missingNative}; using the embedded ${target} backend` : 'requested';
  return { name: target, reason: why };
}

/**
 * Registers the embedded backends with TensorFlow.js: loaded here, when a backend is chosen, not when this module is
 * (the serving main thread imports it for its option names and never runs a tensor).
 */
export function loadEmbeddedBackends(): void {
  const require = createRequire(import.meta.url);
  require('@tensorflow/tfjs-backend-cpu');
  require('@tensorflow/tfjs-backend-wasm');
}

function loadNativeTensorflow(): { ok: true; pkg: string } | { ok: false; reason: string } {
  const require = createRequire(import.meta.url);
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
    } catch {
      continue;
    }
    try {
      require(pkg);
      return { ok: true, pkg };
    } catch (e) {
      return { ok: false, reason: `${pkg} is installed but failed to load (${firstLine(e)})` };
    }
  }
  return { ok: false, reason: '@tensorflow/tfjs-node-gpu is not installed' };
}
