// TensorFlow.js, loaded on first use. The serving paths that run from the bits or in the addon (a given task, one
// example's superposed pass) never touch it, and a thread that never touches it never pays for it: the serving
// main thread loads none of it, and the engine worker only where its backend or a pass needs it. Loaded with
// `require` (its package's main is CommonJS): an ESM import of it also runs Node's CommonJS export scan over the
// 2 MB bundle, ~0.3 s of CPU per thread here. `tf.x` reads as `import * as tf` does; the types are re-exported below.
import { createRequire } from 'node:module';
import type * as TF from '@tensorflow/tfjs-core';

const load = createRequire(import.meta.url);
let module: typeof TF | undefined;

/** The module itself, loaded on the first read of one of its members. */
export const tf: typeof TF = new Proxy({} as typeof TF, {
  get: (_, name) => (module ??= load('@tensorflow/tfjs-core') as typeof TF)[name as keyof typeof TF],
});

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
