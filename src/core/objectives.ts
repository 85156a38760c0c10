// Task-inference objectives as gradients with respect to the logits, one row per example (not averaged).
// H (entropy of the softmax over all s outputs): dH/dz_j = -p_j (log p_j + H).
// G (superfluous neurons): G = logsumexp over all s logits with the l real-class logits held constant,
//   so dG/dz_j = softmax_j for the superfluous j >= l and 0 for the real classes.
import { tf } from './tfjs.ts';
import type { Objective } from '../contract/classify.ts';

export function objectiveGradient(objective: Objective, logits: tf.Tensor2D, classes: number): tf.Tensor2D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    const p = tf.exp(logp);
    if (objective === 'entropy') {
      const h = tf.neg(tf.sum(tf.mul(p, logp), 1, true));
      return tf.neg(tf.mul(p, tf.add(logp, h))) as tf.Tensor2D;
    }
    const outputs = logits.shape[1];
    const superfluous = tf.concat([tf.zeros([1, classes]), tf.ones([1, outputs - classes])], 1);
    return tf.mul(p, superfluous) as tf.Tensor2D;
  });
}

/** Per-example entropy of the softmax over all outputs (HopSupSup recall reports it per step). */
export function entropy(logits: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits);
    return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)) as tf.Tensor1D;
  });
}
