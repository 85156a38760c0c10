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
 * (n_1 values), for the caller's term of the rest. With `live`, counts and V hold only some words (live-words.ts).
 */
export interface SplitOutput {
  x0: number;
  delta0: Float64Array;
  live?: LiveRows;
}

/**
 * Counts and V that hold only the words of some rows (live-words.ts): row r (layer 0's rows first, then each
 * later layer's, the logits excepted) starts at rows[r] in them, or is left out (−1: a row of layer 0 with
 * x_i = x0, whose V' is zero). The forward then runs split as well: layer 0 from x − x0 over the rows held, plus
 * `term` (n_1 values: x0 · Σ_i W[i][j] · counts[i][j] over every row, from the column sums) before dividing by n.
 */
export interface LiveRows {
  rows: Int32Array;
  term: Float64Array;
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
  const live = split?.live;
  const firstRows = rowNumbers(shapes);
  // Where row i of layer l starts in counts and V.
  const at = (l: number, i: number) => (live ? live.rows[firstRows[l] + i] : shapes[l].offset + i * shapes[l].out);
  let z = new Float64Array(0);
  shapes.forEach((shape, l) => {
    const w = layers[l], a = inputs[l], shift = l === 0 && live ? split!.x0 : 0;
    z = new Float64Array(shape.out);
    for (let i = 0; i < shape.in; i++) {
      const ai = a[i] - shift;
      if (ai === 0) continue;
      const row = i * shape.out, c = at(l, i);
      for (let j = 0; j < shape.out; j++) z[j] += ai * w[row + j] * counts[c + j];
    }
    if (l === 0 && live) for (let j = 0; j < shape.out; j++) z[j] += live.term[j];
    for (let j = 0; j < shape.out; j++) z[j] /= n;
    if (l + 1 < shapes.length) inputs.push(z.map((zj) => (zj > 0 ? zj : 0)));
  });
  let delta = logitGradient(z, objective, classes);
  for (let l = shapes.length - 1; l >= 0; l--) {
    const shape = shapes[l], w = layers[l], a = inputs[l], shift = l === 0 && split ? split.x0 : 0;
    for (let i = 0; i < shape.in; i++) {
      const row = i * shape.out, ai = a[i] - shift, o = at(l, i);
      if (o < 0) continue;
      for (let j = 0; j < shape.out; j++) v[o + j] = ai * delta[j] * w[row + j];
    }
    if (l === 0) {
      split?.delta0.set(delta.subarray(0, shape.out));
      break;
    }
    // δ_{l-1}[i] = Σ_j (W_l ⊙ counts / n)[i][j] δ_l[j], gated by ReLU'(z) = 1[a > 0].
    const back = new Float64Array(shape.in);
    for (let i = 0; i < shape.in; i++) {
      if (!(a[i] > 0)) continue;
      const row = i * shape.out, c = at(l, i);
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
  /** With rows, x0 and term: the forward of a LiveRows layout. */
  forward(
    weights: Float32Array,
    sizes: Int32Array,
    counts: Uint16Array | Float32Array,
    n: number,
    x: Float32Array,
    acts: Float64Array,
    rows?: Int32Array,
    x0?: number,
    term?: Float64Array,
  ): void;
  /** With x0 and delta0: the split's V and δ_0 (SplitOutput); with rows, in their layout. */
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
    rows?: Int32Array,
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
  const live = split?.live;
  kernel.forward(weights, sizes, counts, n, x, acts, live?.rows, live && split!.x0, live?.term);
  const logits = acts.subarray(acts.length - sizes[sizes.length - 1]);
  kernel.backward(weights, sizes, counts, n, acts, logitGradient(logits, objective, classes), v, split?.x0, split?.delta0, live?.rows);
}

/** The number of each layer's first row among all layers' rows (layer 0's first). */
function rowNumbers(shapes: LayerShape[]): number[] {
  const first: number[] = [];
  shapes.reduce((r, s, l) => ((first[l] = r), r + s.in), 0);
  return first;
}

/** ∂obj/∂logits for one example (objectives.ts has the same rule on tensors). */
function logitGradient(logits: Float64Array, objective: Objective, classes: number): Float64Array {
  let max = -Infinity;
  for (const z of logits) max = Math.max(max, z);
  let sum = 0;
  for (const z of logits) sum += Math.exp(z - max);
  const logSum = max + Math.log(sum);
  const g = new Float64Array(logits.length);
  if (objective === 'entropy') {
    const p = new Float64Array(logits.length);  // exp(log p) once per logit: binary search asks every round
    let h = 0;
    for (let j = 0; j < g.length; j++) {
      const lp = logits[j] - logSum;
      p[j] = Math.exp(lp);
      h -= p[j] * lp;
    }
    for (let j = 0; j < g.length; j++) g[j] = -p[j] * (logits[j] - logSum + h);
  } else {
    for (let j = classes; j < g.length; j++) g[j] = Math.exp(logits[j] - logSum);
  }
  return g;
}
