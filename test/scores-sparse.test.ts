/**
 * The sparse single-vector scores kernel (native/scores_sparse.cc): it visits only the mask words where V is not
 * all zero, and must give exactly the bits of the dense `scores` kernel (examples = 1) on the same SIMD path:
 * odd word counts, odd numbers of blocks (AVX-512 quads and work items padded), many tiles and groups, zero words
 * alone, in runs, whole tiles and groups zero, −0 in the skipped words, nothing or everything zero; and V of a
 * real one-shot request (LeNet 300-100, MNIST digits, every layer). Paths the CPU lacks are skipped, saying so.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { layerShapes, maskWords, presetArchitecture } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { BLOCK_SLOTS, MaskBank } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { superposedV } from '../src/core/superposed-pass.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';
import { randomMask } from '../src/model/random-model.ts';

const native = loadNativeAddon();

function randomBank(words: number, blocks: number, rng: Xoshiro128): Uint32Array {
  const bank = new Uint32Array(words * blocks * BLOCK_SLOTS);
  for (let i = 0; i < bank.length; i++) bank[i] = rng.nextUint32();
  return bank;
}

/** v with the words `zero(j)` says are zero (some of them −0), the rest random in [−1, 1). */
function vectorWith(words: number, zero: (j: number) => boolean, rng: Xoshiro128): Float32Array {
  const v = new Float32Array(words * 32);
  for (let j = 0; j < words; j++) {
    for (let b = 0; b < 32; b++) v[j * 32 + b] = zero(j) ? (rng.nextUint32() & 1 ? -0 : 0) : rng.nextFloat() * 2 - 1;
  }
  return v;
}

/** The index of the first float whose bits differ, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return x.length === y.length ? -1 : x.length;
}

describe('sparse single-vector scores', { skip: native.addon ? false : native.reason }, () => {
  const addon = native.addon!;
  const best = addon.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];

  /** Runs fn with both switches (the dense kernel's cpuPath, the newer kernels' simdLevel) on `level`. */
  function onPath(level: SimdLevel, fn: () => void): void {
    try {
      assert.equal(addon.setCpuPath(level), level);
      assert.equal(addon.setSimdLevel(level), level);
      fn();
    } finally {
      addon.setCpuPath('auto');
      addon.setSimdLevel('auto');
    }
  }

  function assertSameAsDense(bank: Uint32Array, words: number, blocks: number, v: Float32Array, what: string): void {
    const dense = new Float32Array(blocks * BLOCK_SLOTS), sparse = new Float32Array(blocks * BLOCK_SLOTS).fill(Number.NaN);
    addon.scores(bank, words, blocks, v, 1, dense);
    addon.scoresSparse(bank, words, blocks, v, sparse);
    const at = firstDifference(sparse, dense);
    if (at >= 0) assert.fail(`${what}: slot ${at} = ${sparse[at]}, the dense kernel gives ${dense[at]}`);
  }

  const patterns: [string, (j: number, words: number) => boolean][] = [
    ['nothing zero', () => false],
    ['every other word zero', (j) => j % 2 === 1],
    ['runs of 7 zero words', (j) => Math.floor(j / 7) % 2 === 0],
    ['whole tiles zero', (j) => Math.floor(j / 32) % 3 !== 1],
    ['only the last word', (j, words) => j !== words - 1],
    ['only the first word', (j) => j !== 0],
    ['the first half zero', (j, words) => j < words / 2],
    ['everything zero', () => true],
  ];

  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: the same bits as the dense kernel on constructed vectors`, { skip }, () => {
      onPath(level, () => {
        const rng = new Xoshiro128(9);
        // words: one word, fewer than a tile, odd, > 16 tiles (groups of 2 tiles), odd tiles per group;
        // blocks: one, odd, more than one work item (32 blocks) and not a multiple of 4.
        for (const [words, blocks] of [[1, 1], [5, 3], [37, 5], [700, 2], [1001, 7], [97, 37]]) {
          const bank = randomBank(words, blocks, rng);
          for (const [name, zero] of patterns) {
            assertSameAsDense(bank, words, blocks, vectorWith(words, (j) => zero(j, words), rng), `${level} words=${words} blocks=${blocks} ${name}`);
          }
          const random = new Xoshiro128(words);
          assertSameAsDense(bank, words, blocks, vectorWith(words, () => random.nextFloat() < 0.6, rng), `${level} words=${words} blocks=${blocks} 60% random zero words`);
        }
      });
    });

    it(`${level}: the same bits as the dense kernel on one-shot V of MNIST digits (LeNet 300-100, every layer)`, { skip }, () => {
      const architecture = presetArchitecture('lenet-300-100', 100);
      const shapes = layerShapes(architecture), words = maskWords(architecture);
      const base = generateBaseNetwork(architecture, 1);
      const bank = new MaskBank(words);
      const rng = new Xoshiro128(3);
      for (let t = 0; t < 21; t++) bank.add(randomMask(architecture, 0.5, rng)); // 3 blocks, the last one part empty
      const digits = loadMnistData().test.images;
      const v = new Float32Array(words * 32);
      onPath(level, () => {
        for (const [e, normalize] of [[0, true], [1, true], [2, false]] as const) {
          const raw = digits.subarray(e * 784, (e + 1) * 784);
          const x = normalize ? raw.map((p) => Math.fround(p - Math.fround(0.1307)) / Math.fround(0.3081)) : raw;
          superposedV(base.layers, shapes, bank.count, bank.taskCount, x, 'entropy', architecture.classes, v);
          const zeroWords = Array.from({ length: words }, (_, j) => v.subarray(j * 32, j * 32 + 32).every((f) => f === 0)).filter(Boolean).length;
          assert.ok(zeroWords > 0, 'some hidden units are off, so some words of V are zero');
          assertSameAsDense(bank.raw, words, bank.blocks, v, `${level} digit ${e}${normalize ? '' : ' (not normalised)'}`);
        }
      });
    });
  }

  it('the kernels take it for one vector', () => {
    const kernels = loadNativeKernels().kernels!;
    const rng = new Xoshiro128(4);
    const words = 45, blocks = 3;
    const bank = randomBank(words, blocks, rng);
    const v = vectorWith(words, (j) => j % 3 === 0, rng);
    const viaKernels = new Float32Array(blocks * BLOCK_SLOTS), sparse = new Float32Array(blocks * BLOCK_SLOTS);
    kernels.scores(bank, words, blocks, v, 1, viaKernels);
    addon.scoresSparse(bank, words, blocks, v, sparse);
    assert.equal(firstDifference(viaKernels, sparse), -1);
  });

  it('refuses arguments that do not fit', () => {
    const bank = new Uint32Array(2 * 8), v = new Float32Array(64), out = new Float32Array(8);
    assert.throws(() => addon.scoresSparse(bank, 2, 2, v, out), /bank is shorter/);
    assert.throws(() => addon.scoresSparse(bank, 3, 0, v, out), /v is shorter/);
    assert.throws(() => addon.scoresSparse(bank, 2, 1, v, new Float32Array(7)), /out is shorter/);
    assert.throws(() => addon.scoresSparse(bank, 0, 1, v, out), /words must be a positive integer/);
    assert.throws(() => addon.scoresSparse(new Int32Array(16) as unknown as Uint32Array, 2, 1, v, out), /bank must be a Uint32Array/);
  });
});
