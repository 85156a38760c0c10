// The words of the masks that binary search from one example reads, when its scores split at the input's
// background x0 (background-split.ts).
//
// With the split, the input layer's background rows (x_i = x0) enter nothing through the mask bits: V' is zero
// there, and the forward pass through a superposition takes their share from the column sums,
//   z_j = (1/n) [Σ_{i: x_i ≠ x0} (x_i − x0) · W_ij · counts_ij + x0 · c_0 · Σ_{t ∈ candidates} S_t[j]],
// so the forward, V' and the scores need only the words holding a weight of an input row with x_i ≠ x0 or of a
// later layer (a digit: 36–44% of LeNet 300-100's words). Binary search gathers only these words of its
// candidates (candidate-bank.ts), counts only them and scores only them, round after round.
//
// A word is held whole: a row of the input layer (n_1 weights) need not start on a word, so a held word may also
// carry weights of a background row. V' is zero on those (nothing writes there: `v` starts zeroed), and the
// forward never reads their counts. Every word of a foreground row is held, so each held row's weights lie
// contiguous in the held layout, which is what the superposed pass indexes (LiveRows in superposed-pass.ts).
import type { LayerShape } from './architecture.ts';

export class LiveWords {
  /** The words held, ascending: word j of the held layout is word words[j] of a whole mask. */
  readonly words: Int32Array;
  /** Each row's first weight in the held layout (layer 0's rows first; the logits have none), −1 for background rows. */
  readonly rows: Int32Array;
  /** V' in the held layout (words.length · 32 floats), zero where no held row writes. */
  readonly v: Float32Array;

  /** `vector` gives a zeroed buffer of the length asked for (a search reuses one: candidate-bank.ts). */
  constructor(shapes: LayerShape[], x: Float32Array, readonly x0: number, vector: (length: number) => Float32Array) {
    const last = shapes[shapes.length - 1], input = shapes[0];
    const held = new Uint8Array(Math.ceil((last.offset + last.in * last.out) / 32));
    for (let i = 0; i < input.in; i++) {
      if (x[i] === x0) continue;
      const first = input.offset + i * input.out;
      held.fill(1, first >>> 5, ((first + input.out - 1) >>> 5) + 1);
    }
    held.fill(1, (input.offset + input.in * input.out) >>> 5);
    const position = new Int32Array(held.length);
    let count = 0;
    for (let w = 0; w < held.length; w++) position[w] = held[w] ? count++ : -1;
    this.words = new Int32Array(count);
    for (let w = 0; w < held.length; w++) if (held[w]) this.words[position[w]] = w;
    this.rows = new Int32Array(shapes.reduce((n, s) => n + s.in, 0));
    let r = 0;
    shapes.forEach((shape, l) => {
      for (let i = 0; i < shape.in; i++, r++) {
        const first = shape.offset + i * shape.out;
        this.rows[r] = l === 0 && x[i] === x0 ? -1 : position[first >>> 5] * 32 + (first & 31);
      }
    });
    this.v = vector(count * 32);
  }
}
