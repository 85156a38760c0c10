/**
 * The live words of a search from one example (src/core/live-words.ts) and the kernels that work in their layout:
 * the layout against the whole mask's weights, the superposed pass over held rows (native equals the TypeScript
 * reference bit for bit on every SIMD level, and both equal the whole-mask split pass to rounding), gatherSlots
 * of some words (every level and TypeScript against a projection done by hand) and the column totals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Architecture, layerShapes, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { columnSumsTypescript } from '../src/core/kernels/column-sums.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { LiveWords } from '../src/core/live-words.ts';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { superposedV, superposedVNative } from '../src/core/superposed-pass.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';

const X0 = Math.fround(-0.4242); // as a Float32Array holds it
const architectures: Architecture[] = [
  { inputSize: 41, hidden: [37, 13], outputs: 9, classes: 7 },
  { inputSize: 784, hidden: [300, 100], outputs: 30, classes: 10 },
];
const native = loadNativeAddon();
const best = native.addon?.setSimdLevel('auto');
const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
const levels = order.map((level): [SimdLevel, string | false] => [
  level,
  !native.addon ? native.reason : order.indexOf(level) > order.indexOf(best!) ? `this CPU has no ${level}` : false,
]);

/** About `foreground` of the inputs off the background, the rest at X0. */
function example(rng: Xoshiro128, size: number, foreground = 0.3): Float32Array {
  return Float32Array.from({ length: size }, () => (rng.nextFloat() < foreground ? rng.nextFloat() * 3 + X0 : X0));
}

function live(arch: Architecture, x: Float32Array): LiveWords {
  return new LiveWords(layerShapes(arch), x, X0, (n) => new Float32Array(n));
}

describe('LiveWords', () => {
  it('holds exactly the words with a weight of a foreground row or a later layer, each held row contiguous in its layout', () => {
    const rng = new Xoshiro128(3);
    for (const arch of architectures) {
      const shapes = layerShapes(arch), x = example(rng, arch.inputSize);
      const layout = live(arch, x);
      const wanted = new Set<number>();
      let r = 0;
      shapes.forEach((shape, l) => {
        for (let i = 0; i < shape.in; i++, r++) {
          if (l === 0 && x[i] === X0) {
            assert.equal(layout.rows[r], -1, `background row ${i}`);
            continue;
          }
          for (let j = 0; j < shape.out; j++) {
            const w = shape.offset + i * shape.out + j, at = layout.rows[r] + j;
            wanted.add(w >>> 5);
            assert.equal(layout.words[at >>> 5], w >>> 5, `row ${r} weight ${j}: its word`);
            assert.equal(at & 31, w & 31, `row ${r} weight ${j}: its bit`);
          }
        }
      });
      assert.deepEqual(Array.from(layout.words), [...wanted].sort((a, b) => a - b));
      assert.ok(layout.words.length < maskWords(arch), 'some words are left out');
      assert.ok(layout.v.length === layout.words.length * 32 && layout.v.every((v) => v === 0));
    }
  });
});

describe('the superposed pass over live rows', { skip: native.addon ? false : native.reason }, () => {
  const kernel = loadNativeKernels().kernels?.superposed;
  for (const [level, skip] of levels) {
    it(`${level}: native equals the reference bit for bit, and both equal the whole-mask split pass to rounding`, { skip: skip || !kernel }, () => {
      const rng = new Xoshiro128(11);
      try {
        native.addon!.setSimdLevel(level);
        for (const arch of architectures) {
          const base = generateBaseNetwork(arch, 4), shapes = layerShapes(arch);
          const P = weightCount(arch), padded = maskWords(arch) * 32, n = 29;
          const weights = new Float32Array(P);
          base.layers.reduce((o, l) => (weights.set(l, o), o + l.length), 0);
          const sizes = Int32Array.from([arch.inputSize, ...shapes.map((s) => s.out)]);
          const counts = Float32Array.from({ length: padded }, (_, w) => (w < P ? rng.nextInt(n + 1) : 0));
          for (const objective of ['entropy', 'superfluous'] as const) {
            const x = example(rng, arch.inputSize), layout = live(arch, x);
            // the held words' counts, and x0 · Σ_i W_ij · counts_ij over every row of the input layer
            const held = new Float32Array(layout.words.length * 32);
            layout.words.forEach((w, j) => held.set(counts.subarray(w * 32, w * 32 + 32), j * 32));
            const term = new Float64Array(shapes[0].out);
            for (let i = 0; i < shapes[0].in; i++) for (let j = 0; j < shapes[0].out; j++) term[j] += X0 * base.layers[0][i * shapes[0].out + j] * counts[i * shapes[0].out + j];
            const split = () => ({ x0: X0, delta0: new Float64Array(shapes[0].out), live: { rows: layout.rows, term } });
            const expected = new Float32Array(held.length), got = new Float32Array(held.length);
            const expectedSplit = split(), gotSplit = split();
            superposedV(base.layers, shapes, held, n, x, objective, arch.classes, expected, expectedSplit);
            superposedVNative(kernel!, weights, sizes, held, n, x, objective, arch.classes, got, gotSplit);
            assert.deepEqual(Buffer.from(got.buffer), Buffer.from(expected.buffer), `${level} ${objective} P=${P}: V′`);
            assert.deepEqual(gotSplit.delta0, expectedSplit.delta0, `${level} ${objective} P=${P}: δ0`);
            // The whole mask's split pass: the same V′ on every held weight, to the forward's rounding.
            const whole = new Float32Array(padded), wholeSplit = { x0: X0, delta0: new Float64Array(shapes[0].out) };
            superposedV(base.layers, shapes, counts, n, x, objective, arch.classes, whole, wholeSplit);
            const scale = whole.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            assert.ok(scale > 0, 'V′ is not all zero');
            layout.words.forEach((w, j) => {
              for (let b = 0; b < 32; b++) {
                const a = got[j * 32 + b], e = whole[w * 32 + b];
                if (Math.abs(a - e) > 1e-9 * scale) assert.fail(`${objective} word ${w} bit ${b}: ${a} vs ${e}`);
              }
            });
          }
        }
      } finally {
        native.addon!.setSimdLevel('auto');
      }
    });
  }

  it('refuses a layout that leaves out a row the input does not hold at x0, or points outside counts', { skip: !kernel }, () => {
    const sizes = Int32Array.from([4, 3, 2]);
    const w = new Float32Array(18), c = new Float32Array(18), acts = new Float64Array(9), term = new Float64Array(3);
    const x = Float32Array.from([1, X0, X0, 2]);
    const rows = Int32Array.from([0, -1, -1, 3, 6, 8, 10]);
    assert.doesNotThrow(() => kernel!.forward(w, sizes, c, 2, x, acts, rows, X0, term));
    assert.throws(() => kernel!.forward(w, sizes, c, 2, Float32Array.from([1, 0, X0, 2]), acts, rows, X0, term), /x = x0/);
    assert.throws(() => kernel!.forward(w, sizes, c, 2, x, acts, Int32Array.from([0, -1, -1, 3, 6, 8, 17]), X0, term), /outside counts/);
    assert.throws(() => kernel!.forward(w, sizes, c, 2, x, acts, Int32Array.from([0, -1, -1, 3, -1, 8, 10]), X0, term), /outside counts/);
    assert.throws(() => kernel!.forward(w, sizes, c, 2, x, acts, rows, X0), /term must be/);
  });
});

describe('gatherSlots of some words', () => {
  const cases: [number, number, number[], number[]][] = [
    [9, 3, [0, 5, 17], [0, 2, 3, 8]],
    [40, 12, [3, 1, 88, 40, 41, 42, 43, 44, 45, 90], [1, 2, 3, 17, 18, 39]],
    [1100, 10, Array.from({ length: 67 }, (_, i) => (i * 7) % 80), Array.from({ length: 400 }, (_, i) => i * 2 + (i % 3))],
  ];
  for (const [name, level, skip] of [['typescript', null, false] as const, ...levels.map(([l, s]) => [`native ${l}`, l, s] as const)]) {
    it(`${name}: word j of each gathered mask is word at[j] of the bank, counts of the gathered words`, { skip }, () => {
      const kernels = level ? loadNativeKernels().kernels! : typescriptKernels;
      const rng = new Xoshiro128(23);
      try {
        if (level) native.addon!.setSimdLevel(level);
        for (const [words, blocks, picks, kept] of cases) {
          const bank = Uint32Array.from({ length: words * blocks * BLOCK_SLOTS }, () => rng.nextUint32());
          const slots = Int32Array.from(picks), at = Int32Array.from(kept), held = at.length;
          const size = Math.ceil(slots.length / BLOCK_SLOTS) * BLOCK_SLOTS * held;
          const out = new Uint32Array(size).fill(0xdeadbeef), counts = new Float32Array(held * 32).fill(-1);
          kernels.gatherSlots(bank, words, slots, out, counts, at);
          const expected = new Uint32Array(size), expectedCounts = new Float32Array(held * 32);
          slots.forEach((slot, i) => {
            for (let j = 0; j < held; j++) {
              const word = bank[Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + at[j] * BLOCK_SLOTS + (slot % BLOCK_SLOTS)];
              expected[Math.floor(i / BLOCK_SLOTS) * held * BLOCK_SLOTS + j * BLOCK_SLOTS + (i % BLOCK_SLOTS)] = word;
              for (let b = 0; b < 32; b++) expectedCounts[j * 32 + b] += (word >>> b) & 1;
            }
          });
          assert.deepEqual(out, expected, `${name} words=${words} slots=${slots.length}`);
          assert.deepEqual(counts, expectedCounts, `${name} words=${words} slots=${slots.length}: counts`);
        }
        assert.throws(() => kernels.gatherSlots(new Uint32Array(8 * 4), 4, Int32Array.from([0]), new Uint32Array(16), undefined, Int32Array.from([4])), /outside the mask/);
      } finally {
        native.addon?.setSimdLevel('auto');
      }
    });
  }
});

describe('column totals', () => {
  it('native equals the reference: Σ of the chosen rows of the column sums, exact', { skip: native.addon?.columnTotals ? false : native.reason }, () => {
    const rng = new Xoshiro128(9);
    const cols = 37, table = Int16Array.from({ length: 90 * cols }, () => rng.nextInt(1569) - 784);
    for (const [level, skip] of levels) {
      if (skip) continue;
      native.addon!.setSimdLevel(level);
      for (const rows of [[], [5], [0, 3, 3, 89], Array.from({ length: 70 }, (_, i) => (i * 13) % 90)]) {
        const got = new Int32Array(cols).fill(7), expected = new Int32Array(cols);
        native.addon!.columnTotals!(table, cols, Int32Array.from(rows), got);
        columnSumsTypescript.totals(table, cols, Int32Array.from(rows), expected);
        assert.deepEqual(got, expected, `${level} ${rows.length} rows`);
      }
    }
    native.addon!.setSimdLevel('auto');
    assert.throws(() => native.addon!.columnTotals!(table, cols, Int32Array.from([90]), new Int32Array(cols)), /outside the sums/);
  });
});
