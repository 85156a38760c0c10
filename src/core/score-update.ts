// The per-weight work of a training step besides the matrix products: RMSProp on the scores and the
// effective weights of a threshold-0 (GN) mask. The native addon does it ~10× faster than V8 (AVX2, one
// thread); both versions compute in double and store float32 in the same order, so they give the same bits
// and a trained mask does not depend on which one ran (test/train.test.ts).
import { maskBySign } from './masked-mlp.ts';

export interface ScoreUpdate {
  readonly name: string;
  /** One RMSProp step on S with the straight-through gradient g = G ⊙ W (PyTorch's update, no momentum). */
  rmspropStep(S: Float32Array, V: Float32Array, G: Float32Array, W: Float32Array, lr: number, alpha: number, eps: number): void;
  /** out = W ⊙ (S ≥ 0): masked-mlp.ts maskBySign. */
  maskBySign(S: Float32Array, W: Float32Array, out: Float32Array): void;
}

export const typescriptScoreUpdate: ScoreUpdate = {
  name: 'typescript',
  rmspropStep(S, V, G, W, lr, alpha, eps) {
    const beta = 1 - alpha;
    for (let i = 0; i < S.length; i++) {
      const g = G[i] * W[i];
      const v = alpha * V[i] + beta * g * g;
      V[i] = v;
      S[i] -= (lr * g) / (Math.sqrt(v) + eps);
    }
  },
  maskBySign,
};
