// Recall of a task's neuron masks from a batch of its inputs alone (HopSupSup, the paper's §3.5): per
// hidden layer a real vector u starts at the mean of the stored ±1 patterns; the mask in use is
// s = sign(u) (u ≥ 0 → +1), and u takes SGD-with-momentum steps on
//
//   L_t = (1 − t/T) · H(f(x; s)) + γ · (t/T) · Σ_l E_l(s_l),   E_l(s) = −½ sᵀ Ψ_l s
//
// with a straight-through gradient (∂L/∂u = ∂L/∂s): the output entropy H picks the basin first, the
// Hopfield energy then pulls s into the nearest stored attractor. Defaults are the authors' (lr 500,
// momentum 0.9, γ 1.5e-3); T = 30 because the paper reports convergence in under 30 steps.
import { tf } from './tfjs.ts';
import { type HopfieldReservoir, maskOf } from './hopfield-reservoir.ts';
import { type NeuronMaskedNetwork, disposeTrace, maskTensors } from './neuron-masked-network.ts';
import { entropy, objectiveGradient } from './objectives.ts';

export interface RecallOptions {
  /** T, the number of gradient steps. */
  steps?: number;
  learningRate?: number;
  momentum?: number;
  /** γ, the weight of the energy term. */
  energyWeight?: number;
}

export const DEFAULT_RECALL: Required<RecallOptions> = { steps: 30, learningRate: 1000, momentum: 0.9, energyWeight: 1e-2 };

export interface RecallResult {
  /** The recalled 0/1 mask per hidden layer. */
  masks: Uint8Array[];
  /** Steps after which the mask no longer changed (0: the starting mask was kept). */
  convergedAfter: number;
  /** Mean output entropy of the batch under the mask used at each step. */
  entropies: number[];
  /** Σ_l E_l(s_l) for the mask used at each step, then for the final mask (steps + 1 values). */
  energies: number[];
}

export function recallFromData(
  net: NeuronMaskedNetwork,
  reservoirs: readonly HopfieldReservoir[],
  x: tf.Tensor2D,
  options: RecallOptions = {},
): RecallResult {
  const { steps, learningRate, momentum, energyWeight } = { ...DEFAULT_RECALL, ...options };
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`recall steps must be a positive integer, got ${steps}`);
  const sizes = net.maskSizes;
  if (reservoirs.length !== sizes.length || reservoirs.some((r, l) => r.size !== sizes[l])) {
    throw new RangeError(`expected one reservoir per hidden layer, of sizes ${sizes.join(', ')}`);
  }
  const u = reservoirs.map((r) => r.meanPattern());
  const velocity = sizes.map((d) => new Float32Array(d));
  let s = u.map(signs);
  const entropies: number[] = [];
  const energies: number[] = [];
  let convergedAfter = 0;
  const batch = x.shape[0];
  for (let t = 0; t < steps; t++) {
    const energyShare = t / steps;
    const masks = maskTensors(s.map(maskOf));
    const trace = net.trace(x, masks);
    const dLogits = tf.tidy(() => tf.div(objectiveGradient('entropy', trace.logits, net.architecture.outputs), batch) as tf.Tensor2D);
    entropies.push(tf.tidy(() => tf.mean(entropy(trace.logits)).dataSync()[0]));
    const dMask = net.maskGradients(trace, masks, dLogits);
    const dEntropy = dMask.map((g) => g.dataSync() as Float32Array);
    tf.dispose([...masks, ...dMask, dLogits]);
    disposeTrace(trace);
    let energy = 0;
    for (let l = 0; l < sizes.length; l++) {
      const field = reservoirs[l].field(s[l]);
      const v = velocity[l];
      for (let i = 0; i < sizes[l]; i++) {
        energy -= 0.5 * s[l][i] * field[i];
        // m = (s + 1) / 2, so ∂H/∂s = ½ ∂H/∂m; ∂E/∂s = −Ψ s.
        const grad = (1 - energyShare) * 0.5 * dEntropy[l][i] - energyWeight * energyShare * field[i];
        v[i] = momentum * v[i] + grad;
        u[l][i] -= learningRate * v[i];
      }
    }
    energies.push(energy);
    const next = u.map(signs);
    if (next.some((n, l) => !sameSigns(n, s[l]))) convergedAfter = t + 1;
    s = next;
  }
  energies.push(reservoirs.reduce((e, r, l) => e + r.energy(s[l]), 0));
  return { masks: s.map(maskOf), convergedAfter, entropies, energies };
}

function signs(u: Float32Array): Int8Array {
  return Int8Array.from(u, (v) => (v >= 0 ? 1 : -1));
}

function sameSigns(a: Int8Array, b: Int8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
