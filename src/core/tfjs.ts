// TensorFlow.js, loaded on first use. The serving paths that run from the bits or in the addon (a given task, one
// example's superposed pass) never touch it, and a thread that never touches it never pays for it: the serving
// main thread loads none of it, and the engine worker only where its backend or a pass needs it. Loaded with
// `require` (its package's main is CommonJS): an ESM import of it also runs Node's CommonJS export scan over the
// 2 MB bundle, ~0.3 s of CPU per thread here. `tf.x` reads as `import * as tf` does; the types are re-exported below.
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs-core';

const load = createRequire(import.meta.url);
let module: typeof TF | undefined;
/** A backend whose start waits for startTfjs (deferTfjs), or the reason it failed to start. */
let deferred: { backend: string; start: () => Promise<void>; started?: Promise<void>; failed?: Error } | undefined;

/** The module itself, loaded on the first read of one of its members. */
export const tf: typeof TF = new Proxy({} as typeof TF, {
  get: (_, name) => {
    if (deferred) throw new TfjsNotStarted(deferred.backend, deferred.failed);
    return (module ??= load('@tensorflow/tfjs-core') as typeof TF)[name as keyof typeof TF];
  },
});

/** Thrown by a use of `tf` while its backend waits for startTfjs: the caller starts it and runs the pass again. */
export class TfjsNotStarted extends Error {
  constructor(backend: string, failed?: Error) {
    super(failed ? `TensorFlow.js backend "${backend}" failed to start: ${failed.message}` : `TensorFlow.js backend "${backend}" is not started yet`);
  }
}

/**
 * Leaves TensorFlow.js unloaded until startTfjs: the engine worker opens a model, and is ready, without it (its
 * backend, say wasm, starts asynchronously, so a first use cannot start it in place). `backend` names it meanwhile.
 */
export function deferTfjs(backend: string, start: () => Promise<void>): void {
  deferred = { backend, start };
}

/** Starts a deferred backend (once; at once where none is deferred). */
export function startTfjs(): Promise<void> {
  const d = deferred;
  if (!d) return Promise.resolve();
  d.started ??= (async () => {
    deferred = undefined; // start() itself uses tf
    try {
      await d.start();
    } catch (e) {
      deferred = { ...d, failed: e instanceof Error ? e : new Error(String(e)) };
      throw deferred.failed;
    }
  })();
  return d.started;
}

/** Runs fn, starting a deferred backend first where fn turns out to need TensorFlow.js. fn must be safe to run again. */
export async function withTfjs<T>(fn: () => T): Promise<T> {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof TfjsNotStarted) || !deferred || deferred.failed) throw e;
    await startTfjs();
    return fn();
  }
}

/** Whether a deferred backend still waits for startTfjs. */
export function tfjsDeferred(): boolean {
  return deferred !== undefined && deferred.failed === undefined;
}

/** The backend tensors run on (a deferred one's name), without loading anything for it. */
export function tfjsBackend(): string {
  return deferred ? deferred.backend : tf.getBackend();
}

// The tensor types the code names as tf.Tensor2D etc. (types only: nothing is loaded for them).
export declare namespace tf {
  export type Tensor = TF.Tensor;
  export type Tensor1D = TF.Tensor1D;
  export type Tensor2D = TF.Tensor2D;
}

/** Whether anything in this thread has used TensorFlow.js yet. */
export function tfjsLoaded(): boolean {
  return module !== undefined;
}

/** Live tensors (0 where TensorFlow.js was never loaded). */
export function liveTensors(): number {
  return module ? module.memory().numTensors : 0;
}
