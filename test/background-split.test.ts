/**
 * The background split of one-example scores (src/core/background-split.ts): the input layer's V from x − x0 and
 * the term x0 · c0 · Σ_j δ0_j S_t[j] from per-task column sums. Checked against the plain scores (V from x, the
 * dense kernel) within float rounding, with the same decisions: the column-sum kernels on every SIMD path the CPU
 * has against the TypeScript reference (odd shapes, lone blocks, subsets); the V pass's split output, native
 * against TypeScript; a network's scores on MNIST digits and random inputs as tasks come and go, on subsets
 * (binary search's candidate banks), on an odd architecture; one-shot and binary-search decisions against the
 * plain path; and a trained model (250 PermutedMNIST tasks) on its own tasks' digits.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type Architecture, layerShapes, maskWords, presetArchitecture, validateArchitecture } from '../src/core/architecture.ts';
import { type BaseNetwork, generateBaseNetwork } from '../src/core/base-network.ts';
import { backgroundValue } from '../src/core/background-split.ts';
import { CandidateBank } from '../src/core/candidate-bank.ts';
import { columnSumsTypescript } from '../src/core/kernels/column-sums.ts';
import { type MaskKernels } from '../src/core/kernels/mask-kernels.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { superposedV, superposedVNative } from '../src/core/superposed-pass.ts';
import { decideFromGradients, inferTasks } from '../src/core/task-inference.ts';
import { tf } from '../src/core/tfjs.ts';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { loadModelInto } from '../src/model/model-store.ts';
import { randomMask } from '../src/model/random-model.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';

const native = loadNativeAddon();
const nativeKernels = loadNativeKernels().kernels;
const digits = loadMnistData().test;
const normalise = (raw: Float32Array) =>
  raw.map((p) => Math.fround(p - Math.fround(MNIST_NORMALIZATION.mean)) / Math.fround(MNIST_NORMALIZATION.std));
const digit = (e: number) => normalise(digits.images.slice(e * 784, (e + 1) * 784));
const X0 = normalise(Float32Array.of(0))[0];

before(async () => void (await selectBackend('wasm')));

/** The scores without the split: V from x (superposed-pass.ts, TypeScript), then the kernels' dense pass. */
function plainScores(net: SupermaskNetwork, base: BaseNetwork, kernels: MaskKernels, x: Float32Array, slots?: Int32Array): Float32Array {
  const counts = slots ? new Float32Array(net.words * 32) : net.bank.count;
  if (counts instanceof Float32Array) kernels.subsetCount(net.bank.raw, net.words, slots!, counts);
  const v = new Float32Array(net.words * 32);
  superposedV(base.layers, net.shapes, counts, slots ? slots.length : net.bank.taskCount, x, 'entropy', net.architecture.classes, v);
  const out = new Float32Array(net.bank.slotCapacity);
  kernels.scores(net.bank.raw, net.words, net.bank.blocks, v, 1, out);
  return slots ? Float32Array.from(slots, (s) => out[s]) : out;
}

/** Split and plain scores of the occupied `slots` agree to float rounding (a few ulps of the largest score). */
function assertClose(split: Float32Array, plain: Float32Array, slots: ArrayLike<number>, what: string, tolerance = 2e-6): void {
  let scale = 0;
  for (let i = 0; i < slots.length; i++) scale = Math.max(scale, Math.abs(plain[slots[i]]));
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i];
    assert.ok(Math.abs(split[s] - plain[s]) <= tolerance * scale, `${what}: slot ${s}: split ${split[s]}, plain ${plain[s]} (scale ${scale})`);
  }
}

const argmin = (g: Float32Array, slots: Int32Array) => decideFromGradients(g, slots, 0).slot;

function randomNetwork(architecture: Architecture, kernels: MaskKernels, tasks: number, seed: number) {
  const base = generateBaseNetwork(architecture, seed);
  const net = new SupermaskNetwork(base, kernels, tasks);
  const rng = new Xoshiro128(seed);
  for (let t = 0; t < tasks; t++) net.addMask(randomMask(architecture, 0.5, rng));
  return { base, net, rng };
}

describe('backgroundValue', () => {
  it('is the commonest value when at least 8 inputs hold it, else 0 (no split)', () => {
    assert.equal(backgroundValue(digit(0)), X0);
    assert.equal(backgroundValue(Float32Array.of(1, 2, 2, 2, 2, 2, 2, 2, 2, 3)), 2);
    assert.equal(backgroundValue(Float32Array.of(1, 2, 2, 2, 2, 2, 2, 2, 3)), 0, 'seven of one value');
    const rng = new Xoshiro128(1);
    assert.equal(backgroundValue(normalise(Float32Array.from({ length: 784 }, () => rng.nextFloat()))), 0, 'random inputs: no background');
    assert.equal(backgroundValue(new Float32Array(784).fill(0.5)), 0.5);
    assert.equal(backgroundValue(new Float32Array(784)), 0, 'a zero background needs no split');
  });
});

describe('column-sum kernels', { skip: native.addon ? false : native.reason }, () => {
  const addon = native.addon!;
  const best = addon.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  const onPath = (level: SimdLevel, fn: () => void) => {
    try {
      assert.equal(addon.setSimdLevel(level), level);
      fn();
    } finally {
      addon.setSimdLevel('auto');
    }
  };
  const kernels = nativeKernels!.columnSums!;

  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: sums equal the reference (odd shapes, lone blocks, subsets in any order), the term within rounding`, { skip }, () => {
      const rng = new Xoshiro128(5);
      // [rows, cols, words, blocks]: LeNet's input layer; a layer ending mid-word; one column; more words than the layer.
      for (const [rows, cols, words, blocks] of [[784, 300, 8319, 5], [7, 13, 3, 1], [33, 1, 2, 3], [37, 29, 40, 4], [5, 300, 47, 2]]) {
        const bank = Uint32Array.from({ length: words * blocks * BLOCK_SLOTS }, () => rng.nextUint32());
        const signs = Uint32Array.from({ length: words }, () => rng.nextUint32());
        const all = Int32Array.from({ length: blocks * BLOCK_SLOTS }, (_, s) => s);
        const subsets = [all, Int32Array.of(blocks * BLOCK_SLOTS - 1, 0, 3), Int32Array.of(BLOCK_SLOTS * (blocks - 1) + 2), new Int32Array(0)];
        for (const slots of subsets) {
          const want = new Int16Array(slots.length * cols), got = new Int16Array(slots.length * cols).fill(12345);
          columnSumsTypescript.sums(bank, words, slots, signs, rows, cols, want);
          onPath(level, () => kernels.sums(bank, words, slots, signs, rows, cols, got));
          assert.deepEqual(got, want, `${level} rows=${rows} cols=${cols} blocks=${blocks} slots=${slots.length}`);
        }
        const sums = new Int16Array(all.length * cols);
        columnSumsTypescript.sums(bank, words, all, signs, rows, cols, sums);
        const coef = Float32Array.from({ length: cols }, () => rng.nextFloat() * 2 - 1);
        for (const rowsOf of [undefined, Int32Array.of(all.length - 1, 0, 2, 2)]) {
          const start = Float32Array.from({ length: all.length }, () => rng.nextFloat());
          const want = start.slice(), got = start.slice();
          columnSumsTypescript.term(sums, cols, rowsOf, coef, want);
          onPath(level, () => kernels.term(sums, cols, rowsOf, coef, got));
          for (let p = 0; p < want.length; p++) assert.ok(Math.abs(got[p] - want[p]) <= 1e-5 * (1 + rows), `${level} term p=${p}: ${got[p]} vs ${want[p]}`);
        }
      }
    });
  }

  it('refuses arguments that do not fit', () => {
    const bank = new Uint32Array(2 * 8), signs = new Uint32Array(2), out = new Int16Array(8 * 4);
    assert.throws(() => kernels.sums(bank, 2, Int32Array.of(8), signs, 4, 4, out), /outside the bank/);
    assert.throws(() => kernels.sums(bank, 2, Int32Array.of(0), signs, 5, 13, out), /do not fit/);
    assert.throws(() => kernels.sums(bank, 2, Int32Array.of(0, 1), signs, 4, 16, new Int16Array(31)), /out is shorter/);
    assert.throws(() => kernels.term(new Int16Array(8), 4, Int32Array.of(2), new Float32Array(4), new Float32Array(1)), /outside the sums/);
    assert.throws(() => kernels.term(new Int16Array(8), 4, undefined, new Float32Array(3), new Float32Array(1)), /coef/);
  });
});

describe('the V pass with the split', { skip: nativeKernels?.superposed ? false : 'no native superposed pass' }, () => {
  it('native V′ and δ0 equal the TypeScript pass bit for bit; x0 = 0 is the plain V', () => {
    const architecture = presetArchitecture('lenet-300-100', 100);
    const { base, net } = randomNetwork(architecture, nativeKernels!, 11, 2);
    const shapes = layerShapes(architecture), words = maskWords(architecture), flat = new Float32Array(base.layers.flatMap((l) => Array.from(l)));
    for (const e of [0, 1]) {
      const x = digit(e);
      const split = { x0: X0, delta0: new Float64Array(300) }, splitNative = { x0: X0, delta0: new Float64Array(300) };
      const v = new Float32Array(words * 32), vNative = new Float32Array(words * 32), plain = new Float32Array(words * 32);
      superposedV(base.layers, shapes, net.bank.count, 11, x, 'entropy', 10, v, split);
      superposedVNative(nativeKernels!.superposed!, flat, net.signed.sizes, net.bank.count, 11, x, 'entropy', 10, vNative, splitNative);
      assert.deepEqual(vNative, v);
      assert.deepEqual(splitNative.delta0, split.delta0);
      superposedV(base.layers, shapes, net.bank.count, 11, x, 'entropy', 10, plain);
      for (let i = 0; i < 784; i++) {
        const row = v.subarray(i * 300, (i + 1) * 300);
        if (x[i] === X0) assert.ok(row.every((f) => f === 0), `background pixel ${i}: its row of V′ is zero`);
      }
      assert.deepEqual(v.subarray(784 * 300), plain.subarray(784 * 300), 'later layers as in the plain V');
      superposedVNative(nativeKernels!.superposed!, flat, net.signed.sizes, net.bank.count, 11, x, 'entropy', 10, vNative, { x0: 0, delta0: new Float64Array(300) });
      assert.deepEqual(vNative, plain);
    }
  });
});

for (const [name, kernels] of [['native', nativeKernels], ['typescript', typescriptKernels]] as const) {
  describe(`one-example scores with the split (${name} kernels)`, { skip: kernels ? false : native.reason }, () => {
    const architecture = presetArchitecture('lenet-300-100', 100);

    it('equal the plain scores on MNIST digits and random inputs, with the same decisions, as tasks come and go', () => {
      const { base, net, rng } = randomNetwork(architecture, kernels!, name === 'native' ? 61 : 13, 3);
      const check = (what: string) => {
        const slots = net.bank.occupiedSlots();
        for (let e = 0; e < (name === 'native' ? 12 : 3); e++) {
          const x = digit(e);
          const split = net.scoresFromCounts(net.bank.count, slots.length, x, 'entropy');
          const plain = plainScores(net, base, kernels!, x);
          if (name === 'typescript') assert.deepEqual(split, plain, 'without native column sums: no split, the plain scores');
          assertClose(split, plain, slots, `${what}, digit ${e}`);
          assert.equal(argmin(split, slots), argmin(plain, slots), `${what}, digit ${e}: the same decision`);
        }
        const random = normalise(Float32Array.from({ length: 784 }, () => rng.nextFloat()));
        assert.deepEqual(net.scoresFromCounts(net.bank.count, slots.length, random, 'entropy'), plainScores(net, base, kernels!, random), `${what}: no background, no split, the same bits`);
      };
      check('loaded');
      for (const slot of [0, 5, 12]) net.removeMask(slot);
      check('three removed');
      for (let t = 0; t < 10; t++) net.addMask(randomMask(architecture, 0.3, rng)); // fills the holes, then grows the bank
      check('ten added');
    });

    it('over a subset (a candidate bank) take the subset’s rows of the column sums', () => {
      const { base, net } = randomNetwork(architecture, kernels!, 29, 4);
      const slots = Int32Array.of(1, 4, 5, 9, 17, 20, 28);
      const candidates = CandidateBank.of(kernels!, net.words, net.candidateScratch, net.bank, slots);
      for (const e of [3, 4]) {
        const x = digit(e);
        const split = net.scoresFromCounts(candidates.counts, slots.length, x, 'entropy', candidates);
        const plain = plainScores(net, base, kernels!, x, slots);
        const positions = Int32Array.from(slots.keys());
        assertClose(split, plain, positions, `digit ${e}, candidates ${slots.join(',')}`);
        assert.equal(argmin(split, positions), argmin(plain, positions));
      }
    });
  });
}

describe('decisions', { skip: nativeKernels ? false : native.reason }, () => {
  it('binary search from one example picks what the plain scores pick, round by round', () => {
    const architecture = presetArchitecture('lenet-300-100', 100);
    const { base, net } = randomNetwork(architecture, nativeKernels!, 45, 6);
    const lowerHalf = (candidates: Int32Array, score: (s: number) => number) =>
      Int32Array.from(Array.from(candidates).sort((a, b) => score(a) - score(b) || a - b).slice(0, Math.ceil(candidates.length / 2))).sort();
    for (let e = 20; e < 26; e++) {
      const x = digit(e);
      let plain = net.bank.occupiedSlots(), split = plain;
      let splitBank: CandidateBank | undefined;
      while (plain.length > 1) {
        const p = plainScores(net, base, nativeKernels!, x, plain.length === 45 ? undefined : plain);
        plain = lowerHalf(plain, (s) => (plain.length === 45 ? p[s] : p[plain.indexOf(s)]));
        const s = splitBank ? net.scoresFromCounts(splitBank.counts, split.length, x, 'entropy', splitBank) : net.scoresFromCounts(net.bank.count, 45, x, 'entropy');
        const positions = splitBank ? Int32Array.from(split.keys()) : split;
        const kept = lowerHalf(positions, (q) => s[q]);
        split = splitBank ? kept.map((q) => split[q]) : kept;
        splitBank = CandidateBank.of(nativeKernels!, net.words, net.candidateScratch, net.bank, split);
        assert.deepEqual(split, plain, `digit ${e}: the same candidates each round`);
      }
    }
  });

  it('per-example decisions and merged one-example calls take each digit’s own split pass: the fused pass’s decisions', () => {
    const architecture = presetArchitecture('lenet-300-100', 100);
    const { net, rng } = randomNetwork(architecture, nativeKernels!, 37, 9);
    const slots = net.bank.occupiedSlots();
    const options = { method: 'one-shot', objective: 'entropy', decideFrom: 'each', epsilon: 0.125, rerank: 1 } as const;
    const rows = [0, 1, 2, 3, 4, 5, 6].map(digit);
    const x = tf.tensor2d(Float32Array.from(rows.flatMap((r) => Array.from(r))), [rows.length, 784]);
    try {
      // The fused pass over all rows (what 'each' ran before), against what inferTasks decides now.
      const fused = net.gradientsOver(x, 'entropy', true);
      const width = net.bank.slotCapacity;
      const fusedSlots = rows.map((_, r) => argmin(fused.subarray(r * width, (r + 1) * width), slots));
      assert.deepEqual(inferTasks(net, x, options).map((d) => d.slot), fusedSlots, 'decideFrom each');
      // The fused pass's V comes from tfjs (wasm), which sums in another order than the addon's pass: a looser bound.
      rows.forEach((row, r) => assertClose(net.scoresFromCounts(net.bank.count, slots.length, row, 'entropy'), fused.subarray(r * width, (r + 1) * width), slots, `row ${r}`, 1e-5));
      // Merged calls of one example each (segments of 1), and segments of 3 and 4 deciding from their first example.
      const first = { ...options, decideFrom: 'first' } as const;
      assert.deepEqual(inferTasks(net, x, first, undefined, [1, 1, 1, 1, 1, 1, 1]).map((d) => d.slot), fusedSlots, 'segments of one');
      assert.deepEqual(inferTasks(net, x, first, undefined, [3, 4]).map((d) => d.slot), [0, 0, 0, 3, 3, 3, 3].map((r) => fusedSlots[r]), 'segments of 3 and 4');
      // A row without a background (random pixels) sends the whole call through the fused pass: the same decisions.
      const mixed = tf.tensor2d(Float32Array.from([...rows[0], ...normalise(Float32Array.from({ length: 784 }, () => rng.nextFloat()))]), [2, 784]);
      try {
        const g = net.gradientsOver(mixed, 'entropy', true);
        assert.deepEqual(inferTasks(net, mixed, options).map((d) => d.slot), [0, 1].map((r) => argmin(g.subarray(r * width, (r + 1) * width), slots)));
      } finally {
        mixed.dispose();
      }
    } finally {
      x.dispose();
    }
  });

  it('an odd architecture (37 inputs, 13 and 5 hidden) with a background: the same scores and decisions', () => {
    const architecture = validateArchitecture({ inputSize: 37, hidden: [13, 5], outputs: 7, classes: 4 });
    for (const kernels of [nativeKernels!, typescriptKernels]) {
      const { base, net, rng } = randomNetwork(architecture, kernels, 19, 8);
      for (let e = 0; e < 5; e++) {
        const x = Float32Array.from({ length: 37 }, () => (rng.nextFloat() < 0.6 ? -0.25 : rng.nextFloat() * 2 - 1));
        assert.equal(backgroundValue(x), -0.25);
        const slots = net.bank.occupiedSlots();
        const split = net.scoresFromCounts(net.bank.count, slots.length, x, 'entropy');
        const plain = plainScores(net, base, kernels, x);
        assertClose(split, plain, slots, `${kernels.name} example ${e}`);
        assert.equal(argmin(split, slots), argmin(plain, slots));
      }
    }
  });

  it('a trained model (250 PermutedMNIST tasks): the same one-shot decisions as the plain scores on its tasks’ digits', async () => {
    let base: BaseNetwork | undefined, net: SupermaskNetwork | undefined;
    const manifest = await loadModelInto(
      'models/permuted-mnist-lenet',
      (m) => {
        base = generateBaseNetwork(m.architecture, m.seed);
        net = new SupermaskNetwork(base, nativeKernels!, m.tasks.length);
      },
      (_, mask) => void net!.addMask(mask),
    );
    const slots = net!.bank.occupiedSlots();
    let right = 0, cases = 0;
    for (const t of [0, 17, 101, 249]) {
      const ds = taskDataset(manifest.tasks[t].transform, digits);
      for (let e = 0; e < 5; e++, cases++) {
        const x = normalise(ds.images.slice(e * 784, (e + 1) * 784));
        const split = net!.scoresFromCounts(net!.bank.count, slots.length, x, 'entropy');
        const plain = plainScores(net!, base!, nativeKernels!, x);
        assertClose(split, plain, slots, `task ${t}, digit ${e}`);
        assert.equal(argmin(split, slots), argmin(plain, slots), `task ${t}, digit ${e}`);
        if (argmin(split, slots) === t) right++;
      }
    }
    assert.ok(right >= cases * 0.8, `one-shot finds the task of most digits (${right} of ${cases})`);
  });
});
