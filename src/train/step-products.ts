// The matrix products of one supermask training step: the forward pass to the logits, then, from ∂L/∂logits,
// every layer's gradient ∂L/∂W_eff = aᵀ·δ and the deltas δ_{l−1} = (δ_l · W_effᵀ) ⊙ 1[a_l > 0].
//
// Two implementations:
// - native: native/train_gemm.cc, a blocked GEMM on one thread (AVX-512 or AVX2/FMA, picked at run time). It
//   packs the transposes itself, so it needs neither xᵀ nor W_effᵀ.
// - tfjs: core/masked-mlp.ts's forwardTrace / backwardDeltas / batchWeightGradient on the active TensorFlow.js
//   backend (wasm by default), with explicit transposes. The fallback where the addon is not built.
//
// They agree to float rounding, not bit for bit: the native GEMM sums each output in k order with fused
// multiply-adds (the same bits on every native path), XNNPACK in its own blocked order. Measured on one step,
// the gradients differ by a few float ulps relative to the sum of |terms|; over a task, masks differ only in
// weights whose score ends near 0 (test/train-products.test.ts states the tolerances).
import * as tf from '@tensorflow/tfjs-core';
import { SupsupError, invalid } from '../contract/errors.ts';
import { type LayerShape } from '../core/architecture.ts';
import { backwardDeltas, batchWeightGradient, forwardTrace } from '../core/masked-mlp.ts';
import { type NativeAddon, loadNativeAddon } from '../platform/native-addon.ts';

export type MatmulChoice = 'native' | 'tfjs';
export const MATMUL_CHOICES: readonly MatmulChoice[] = ['native', 'tfjs'];

export interface StepProducts {
  /** "native-avx512", "native-avx2", "native-scalar" or "tfjs-wasm", "tfjs-cpu", ... */
  readonly name: string;
  /** Whether `run` reads xT and the transposed weights (layers past the first); callers fill them only then. */
  readonly usesTransposes: boolean;
  /**
   * One forward and backward pass on a batch of B: x [B, inputs] and its transpose xT; weff[l] [in, out] and, when
   * usesTransposes, weffT[l] [out, in] for l > 0. `lossGradient` gets the logits [B, s] and returns
   * ∂L/∂logits [B, s]. Returns ∂L/∂W_eff per layer, [in, out]; the arrays may be reused by the next call.
   */
  run(
    x: Float32Array,
    xT: Float32Array,
    B: number,
    shapes: LayerShape[],
    weff: Float32Array[],
    weffT: Float32Array[],
    lossGradient: (logits: Float32Array) => Float32Array,
  ): Float32Array[];
}

/**
 * The products to train with: `native` needs the addon built with native/train_gemm.cc; undefined picks native
 * when it is there and has a vector path (AVX2 or AVX-512), else tfjs.
 */
export function selectStepProducts(choice?: MatmulChoice): StepProducts {
  if (choice === 'tfjs') return tfjsStepProducts;
  if (choice !== undefined && choice !== 'native') throw invalid(`matmul must be one of ${MATMUL_CHOICES.join(', ')}, got "${choice}"`);
  const { addon, reason } = loadNativeAddon();
  const usable = addon?.matmul !== undefined;
  if (choice === 'native') {
    if (!addon || !usable) {
      const why = addon ? 'the addon predates native/train_gemm.cc (run `npm run build:native`)' : reason;
      throw new SupsupError('failed_precondition', `native matrix products unavailable: ${why}`);
    }
    return nativeStepProducts(addon);
  }
  return addon && usable && addon.simdLevel() !== 'scalar' ? nativeStepProducts(addon) : tfjsStepProducts;
}

export const tfjsStepProducts: StepProducts = {
  get name() {
    return `tfjs-${tf.getBackend()}`;
  },
  usesTransposes: true,
  run(x, xT, B, shapes, weff, weffT, lossGradient) {
    const L = shapes.length;
    const grads: Float32Array[] = new Array(L);
    // tidy must not return the gradients: it would walk every element of the typed arrays looking for tensors.
    tf.tidy(() => {
      const weights = weff.map((E, l) => tf.tensor2d(E, [shapes[l].in, shapes[l].out]));
      const transposed: tf.Tensor2D[] = [];
      for (let l = 1; l < L; l++) transposed[l] = tf.tensor2d(weffT[l], [shapes[l].out, shapes[l].in]);
      const { inputs, logits } = forwardTrace(weights, tf.tensor2d(x, [B, shapes[0].in]));
      const dLogits = tf.tensor2d(lossGradient(logits.dataSync() as Float32Array), [B, shapes[L - 1].out]);
      const deltas = backwardDeltas({ weights, transposed }, inputs, dLogits);
      const xTensorT = tf.tensor2d(xT, [shapes[0].in, B]);
      for (let l = 0; l < L; l++) grads[l] = batchWeightGradient(inputs[l], deltas[l], l === 0 ? xTensorT : undefined).dataSync() as Float32Array;
    });
    return grads;
  },
};

/** The addon's GEMM; activations, deltas and gradients live in buffers reused from step to step. */
export function nativeStepProducts(addon: NativeAddon): StepProducts {
  const matmul = addon.matmul;
  if (!matmul) throw new SupsupError('failed_precondition', 'the native addon has no matmul (run `npm run build:native`)');
  let acts: Float32Array[] = []; // acts[l]: the output of layer l, [B, out_l] (ReLU'd except the last)
  let deltas: Float32Array[] = []; // deltas[l]: ∂L/∂(pre-activation of layer l), [B, out_l]
  let grads: Float32Array[] = [];
  let batch = -1;
  return {
    get name() {
      return `native-${addon.simdLevel()}`;
    },
    usesTransposes: false,
    run(x, _xT, B, shapes, weff, _weffT, lossGradient) {
      const L = shapes.length;
      if (batch !== B || grads.length !== L || grads.some((g, l) => g.length !== shapes[l].in * shapes[l].out)) {
        acts = shapes.map((s) => new Float32Array(B * s.out));
        deltas = shapes.map((s, l) => new Float32Array(l === L - 1 ? 0 : B * s.out));
        grads = shapes.map((s) => new Float32Array(s.in * s.out));
        batch = B;
      }
      for (let l = 0; l < L; l++) {
        const input = l === 0 ? x : acts[l - 1];
        matmul(input, weff[l], acts[l], B, shapes[l].in, shapes[l].out, false, false, l + 1 < L, null);
      }
      let delta = lossGradient(acts[L - 1]);
      for (let l = L - 1; l >= 0; l--) {
        const input = l === 0 ? x : acts[l - 1];
        matmul(input, delta, grads[l], shapes[l].in, B, shapes[l].out, true, false, false, null);
        if (l > 0) {
          matmul(delta, weff[l], deltas[l - 1], B, shapes[l].out, shapes[l].in, false, true, false, input);
          delta = deltas[l - 1];
        }
      }
      return grads;
    },
  };
}
