// HopSupSup's base network (the paper's §3.5): a frozen random MLP whose hidden layers are masked per
// neuron, not per weight, so that a task's mask is short enough for a Hopfield reservoir:
//
//   f(x) = softmax(W3ᵀ (m2 ⊙ σ(BN(W2ᵀ (m1 ⊙ σ(BN(W1ᵀ x)))))))
//
// BN normalises each feature over the batch (no affine parameters, no running statistics: the batch
// itself is the statistic, as in the paper), σ is Swish x·sigmoid(x), and the weights are the project's
// signed Kaiming constants (src/core/base-network.ts) regenerated from the seed. Gradients are written
// out by hand (the wasm backend has no fast autodiff): only ∂/∂m is needed, never ∂/∂W.
import { tf } from './tfjs.ts';
import { type Architecture, validateArchitecture } from './architecture.ts';
import { generateBaseNetwork } from './base-network.ts';

export const BN_EPSILON = 1e-5;

/** The paper's network for SplitMNIST: 784 → 2048 → 2048 → 10. */
export const HOPSUPSUP_ARCHITECTURE: Architecture = { inputSize: 784, hidden: [2048, 2048], outputs: 10, classes: 10 };

/** Per-layer trace of a forward pass, kept for the backward pass. Every tensor is owned by the trace. */
export interface NeuronTrace {
  /** BN output per hidden layer, [B, d]. */
  normalized: tf.Tensor2D[];
  /** 1 / sqrt(var + ε) per hidden layer, [1, d]. */
  inverseStd: tf.Tensor2D[];
  /** Swish output per hidden layer, before the mask, [B, d]. */
  activations: tf.Tensor2D[];
  logits: tf.Tensor2D;
}

export class NeuronMaskedNetwork {
  readonly architecture: Architecture;
  readonly seed: number;
  private readonly weights: tf.Tensor2D[];
  /** Transposes for the backward pass (the wasm matMul is slow with transpose flags). */
  private readonly transposed: tf.Tensor2D[];

  constructor(architecture: Architecture, seed: number) {
    validateArchitecture(architecture);
    if (architecture.hidden.length === 0) throw new Error('a neuron-masked network needs at least one hidden layer');
    this.architecture = architecture;
    this.seed = seed;
    const base = generateBaseNetwork(architecture, seed);
    const sizes = [architecture.inputSize, ...architecture.hidden, architecture.outputs];
    this.weights = base.layers.map((w, l) => tf.keep(tf.tensor2d(w, [sizes[l], sizes[l + 1]])));
    this.transposed = this.weights.map((w) => tf.keep(tf.transpose(w)));
  }

  /** Widths of the masked (hidden) layers. */
  get maskSizes(): number[] {
    return this.architecture.hidden;
  }

  /** Forward pass with one real-valued mask row [1, d] per hidden layer (0/1 for a binary mask). */
  trace(x: tf.Tensor2D, masks: tf.Tensor2D[]): NeuronTrace {
    this.checkMasks(masks);
    if (x.shape[0] < 2) throw new RangeError('batch norm over the batch needs at least 2 examples');
    const normalized: tf.Tensor2D[] = [];
    const inverseStd: tf.Tensor2D[] = [];
    const activations: tf.Tensor2D[] = [];
    let h: tf.Tensor2D = x;
    masks.forEach((m, l) => {
      const next = tf.tidy(() => {
        const pre = tf.matMul(h, this.weights[l]);
        const { mean, variance } = tf.moments(pre, 0, true);
        const inv = tf.rsqrt(tf.add(variance, BN_EPSILON)) as tf.Tensor2D;
        const n = tf.mul(tf.sub(pre, mean), inv) as tf.Tensor2D;
        const a = tf.mul(n, tf.sigmoid(n)) as tf.Tensor2D;
        return { inv, n, a, out: tf.mul(a, m) as tf.Tensor2D };
      });
      normalized.push(next.n);
      inverseStd.push(next.inv);
      activations.push(next.a);
      if (l > 0) h.dispose();
      h = next.out;
    });
    const logits = tf.matMul(h, this.weights[masks.length]) as tf.Tensor2D;
    h.dispose();
    return { normalized, inverseStd, activations, logits };
  }

  /** Logits only. */
  logits(x: tf.Tensor2D, masks: tf.Tensor2D[]): tf.Tensor2D {
    const t = this.trace(x, masks);
    disposeTrace(t, false);
    return t.logits;
  }

  /**
   * ∂obj/∂m_l for every hidden layer, summed over the batch, given ∂obj/∂logits [B, outputs] for the
   * trace's pass. Returned tensors are [d_l], owned by the caller.
   */
  maskGradients(trace: NeuronTrace, masks: tf.Tensor2D[], dLogits: tf.Tensor2D): tf.Tensor1D[] {
    const grads: tf.Tensor1D[] = new Array(masks.length);
    let dOut: tf.Tensor2D = tf.matMul(dLogits, this.transposed[masks.length]); // ∂obj/∂(masked output of the last hidden layer)
    for (let l = masks.length - 1; l >= 0; l--) {
      const a = trace.activations[l];
      grads[l] = tf.tidy(() => tf.sum(tf.mul(dOut, a), 0) as tf.Tensor1D);
      if (l === 0) break;
      const dPrev = tf.tidy(() => {
        const n = trace.normalized[l];
        const sig = tf.sigmoid(n);
        // Swish'(n) = σ(n) + n σ(n)(1 − σ(n))
        const swishGrad = tf.add(sig, tf.mul(tf.mul(n, sig), tf.sub(1, sig)));
        const dn = tf.mul(tf.mul(dOut, masks[l]), swishGrad);
        // BN without affine, batch statistics: ∂pre = inv · (dn − mean(dn) − n · mean(dn ⊙ n))
        const dPre = tf.mul(trace.inverseStd[l], tf.sub(tf.sub(dn, tf.mean(dn, 0, true)), tf.mul(n, tf.mean(tf.mul(dn, n), 0, true))));
        return tf.matMul(dPre as tf.Tensor2D, this.transposed[l]) as tf.Tensor2D;
      });
      dOut.dispose();
      dOut = dPrev;
    }
    dOut.dispose();
    return grads;
  }

  dispose(): void {
    tf.dispose([...this.weights, ...this.transposed]);
  }

  private checkMasks(masks: tf.Tensor2D[]): void {
    const sizes = this.maskSizes;
    if (masks.length !== sizes.length || masks.some((m, l) => m.shape[0] !== 1 || m.shape[1] !== sizes[l])) {
      throw new RangeError(`expected one [1, d] mask per hidden layer (d = ${sizes.join(', ')})`);
    }
  }
}

/** Disposes a trace's tensors (the logits too unless `withLogits` is false). */
export function disposeTrace(t: NeuronTrace, withLogits = true): void {
  tf.dispose([...t.normalized, ...t.inverseStd, ...t.activations]);
  if (withLogits) t.logits.dispose();
}

/** 0/1 mask rows as [1, d] float tensors. */
export function maskTensors(masks: Uint8Array[]): tf.Tensor2D[] {
  return masks.map((m) => tf.tensor2d(Float32Array.from(m), [1, m.length]));
}
