// V for one example through a superposition given by its per-weight count, in plain arrays (no tfjs, no dense
// copy of the weights): the forward pass through W ⊙ counts / n, the objective's gradient at the logits, the
// backward pass to each layer's output delta δ_l, and V(w) = a_l[i] · δ_l[j] · W_l[i][j] for w = (l, i, j),
// the mask-independent factor of every ∂obj/∂α_i (masked-mlp.ts). Batch 1 only: the commonest inferred
// request and every round of binary search, where a tfjs pass and a tfjs V cost more than the bank pass over
// the remaining candidates (measured ~6 ms per V through tfjs wasm at P = 315,200).
import type { Objective } from '../contract/classify.ts';
import type { LayerShape } from './architecture.ts';

/**
 * With a background split (background-split.ts): layer 0's V is written from x − x0, and δ_0 goes to delta0
 * (n_1 values), for the caller's term of the rest.
 */
export interface SplitOutput {
  x0: number;
  delta0: Float64Array;
}

/**
 * Writes V into v[0 .. P) (v's padding past P is left as is). `counts` is Σ_i M^i over the n masks of the
 * superposition (n ≥ 1), `layers` the frozen base weights, [in][out] per layer, `x` one normalised example.
 */
export function superposedV(
  layers: Float32Array[],
  shapes: LayerShape[],
  counts: ArrayLike<number>,
  n: number,
  x: Float32Array,
  objective: Objective,
  classes: number,
  v: Float32Array,
  split?: SplitOutput,
): void {
  const inputs: Float64Array[] = [Float64Array.from(x)];
  let z = new Float64Array(0);
  shapes.forEach((shape, l) => {
    const w = layers[l], a = inputs[l];
    z = new Float64Array(shape.out);
    for (let i = 0; i < shape.in; i++) {
      const ai = a[i];
      if (ai === 0) continue;
      const row = i * shape.out, c = shape.offset + row;
      for (let j = 0; j < shape.out; j++) z[j] += ai * w[row + j] * counts[c + j];
    }
    for (let j = 0; j < shape.out; j++) z[j] /= n;
    if (l + 1 < shapes.length) inputs.push(z.map((zj) => (zj > 0 ? zj : 0)));
  });
  let delta = logitGradient(z, objective, classes);
  for (let l = shapes.length - 1; l >= 0; l--) {
    const shape = shapes[l], w = layers[l], a = inputs[l], shift = l === 0 && split ? split.x0 : 0;
    for (let i = 0; i < shape.in; i++) {
      const row = i * shape.out, ai = a[i] - shift;
      for (let j = 0; j < shape.out; j++) v[shape.offset + row + j] = ai * delta[j] * w[row + j];
    }
    if (l === 0) {
      split?.delta0.set(delta.subarray(0, shape.out));
      break;
    }
    // δ_{l-1}[i] = Σ_j (W_l ⊙ counts / n)[i][j] δ_l[j], gated by ReLU'(z) = 1[a > 0].
    const back = new Float64Array(shape.in);
    for (let i = 0; i < shape.in; i++) {
      if (!(a[i] > 0)) continue;
      const row = i * shape.out, c = shape.offset + row;
      let s = 0;
      for (let j = 0; j < shape.out; j++) s += w[row + j] * counts[c + j] * delta[j];
      back[i] = s / n;
    }
    delta = back;
  }
}

/**
 * The same pass in the native addon (native/superposed_pass.cc), in two halves around the objective's
 * gradient: the same double operations in the same order as superposedV, so the same V bit for bit.
 * `weights` holds the layers back to back (P floats), `sizes` [n_0 … n_L]; `acts` n_0 + … + n_L doubles
 * (each layer's input, then the logits).
 */
export interface SuperposedKernel {
  forward(weights: Float32Array, sizes: Int32Array, counts: Uint16Array | Float32Array, n: number, x: Float32Array, acts: Float64Array): void;
  /** With x0 and delta0: the split's V and δ_0 (SplitOutput). */
  backward(
    weights: Float32Array,
    sizes: Int32Array,
    counts: Uint16Array | Float32Array,
    n: number,
    acts: Float64Array,
    delta: Float64Array,
    v: Float32Array,
    x0?: number,
    delta0?: Float64Array,
  ): void;
}

/** superposedV through the native kernel. */
export function superposedVNative(
  kernel: SuperposedKernel,
  weights: Float32Array,
  sizes: Int32Array,
  counts: Uint16Array | Float32Array,
  n: number,
  x: Float32Array,
  objective: Objective,
  classes: number,
  v: Float32Array,
  split?: SplitOutput,
): void {
  const acts = new Float64Array(sizes.reduce((a, b) => a + b, 0));
  kernel.forward(weights, sizes, counts, n, x, acts);
  const logits = acts.subarray(acts.length - sizes[sizes.length - 1]);
  kernel.backward(weights, sizes, counts, n, acts, logitGradient(logits, objective, classes), v, split?.x0, split?.delta0);
}

/** ∂obj/∂logits for one example (objectives.ts has the same rule on tensors). */
function logitGradient(logits: Float64Array, objective: Objective, classes: number): Float64Array {
  let max = -Infinity;
  for (const z of logits) max = Math.max(max, z);
  let sum = 0;
  for (const z of logits) sum += Math.exp(z - max);
  const logSum = max + Math.log(sum);
  const logp = logits.map((z) => z - logSum);
  const g = new Float64Array(logits.length);
  if (objective === 'entropy') {
    let h = 0;
    for (const lp of logp) h -= Math.exp(lp) * lp;
    for (let j = 0; j < g.length; j++) g[j] = -Math.exp(logp[j]) * (logp[j] + h);
  } else {
    for (let j = classes; j < g.length; j++) g[j] = Math.exp(logp[j]);
  }
  return g;
}
