// The masked MLP's dense math: forward, and backward to the effective weights. Layers are [in][out]
// (x @ W needs no transpose). The wasm backend's matMul loses its fast path with transposeA/transposeB
// (about 10x slower, measured), so the backward pass uses explicit transposes and a cached Wᵀ.
import * as tf from '@tensorflow/tfjs-core';

export interface DenseLayers {
  /** Effective weights per layer, [in, out]. */
  weights: tf.Tensor2D[];
  /** Their transposes, [out, in], for the backward pass. */
  transposed: tf.Tensor2D[];
}

export function makeDenseLayers(weights: tf.Tensor2D[]): DenseLayers {
  return { weights, transposed: weights.map((w) => tf.keep(tf.transpose(w))) };
}

export function disposeDenseLayers(layers: DenseLayers): void {
  for (const t of [...layers.weights, ...layers.transposed]) t.dispose();
}

export function forward(weights: tf.Tensor2D[], x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    let h = x;
    weights.forEach((w, l) => {
      h = tf.matMul(h, w);
      if (l + 1 < weights.length) h = tf.relu(h);
    });
    return h;
  });
}

/** Forward keeping each layer's input (for the backward pass). Caller disposes everything returned. */
export function forwardTrace(weights: tf.Tensor2D[], x: tf.Tensor2D): { inputs: tf.Tensor2D[]; logits: tf.Tensor2D } {
  const inputs: tf.Tensor2D[] = [];
  let h = x.clone();
  weights.forEach((w, l) => {
    inputs.push(h);
    const z: tf.Tensor2D = tf.matMul(h, w);
    if (l + 1 < weights.length) {
      h = tf.relu(z);
      z.dispose();
    } else {
      h = z;
    }
  });
  return { inputs, logits: h };
}

/**
 * Backward from dObj/dlogits to the deltas δ_l = dObj/d(pre-activation of layer l) (each [B, out_l]);
 * dObj/dW_l = inputs_lᵀ · δ_l. Returned deltas are owned by the caller.
 */
export function backwardDeltas(layers: DenseLayers, inputs: tf.Tensor2D[], dLogits: tf.Tensor2D): tf.Tensor2D[] {
  const deltas: tf.Tensor2D[] = new Array(inputs.length);
  deltas[inputs.length - 1] = dLogits.clone();
  for (let l = inputs.length - 1; l > 0; l--) {
    deltas[l - 1] = tf.tidy(() => {
      const back = tf.matMul(deltas[l], layers.transposed[l]);
      // ReLU'(z) = 1[z > 0] and inputs[l] = relu(z), so the gate is inputs[l] > 0.
      return tf.mul(back, tf.cast(tf.greater(inputs[l], 0), 'float32')) as tf.Tensor2D;
    });
  }
  return deltas;
}

/**
 * One forward and backward pass: each layer's input a_l and delta δ_l, so that dObj/dW_l = a_lᵀ · δ_l
 * (summed over the batch) or, per example e, the outer product a_l[e] ⊗ δ_l[e]. Caller disposes both lists.
 */
export function gradientTrace(
  layers: DenseLayers,
  x: tf.Tensor2D,
  dObjective: (logits: tf.Tensor2D) => tf.Tensor2D,
): { inputs: tf.Tensor2D[]; deltas: tf.Tensor2D[] } {
  const { inputs, logits } = forwardTrace(layers.weights, x);
  const dLogits = tf.tidy(() => dObjective(logits));
  const deltas = backwardDeltas(layers, inputs, dLogits);
  tf.dispose([logits, dLogits]);
  return { inputs, deltas };
}

/** a_lᵀ · δ_l with an explicit transpose (see the note at the top). */
export function batchWeightGradient(input: tf.Tensor2D, delta: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(tf.transpose(input), delta));
}
