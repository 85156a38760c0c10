/**
 * Binary search over packed candidate banks: each round scores and counts only the remaining candidates.
 * It must pick exactly what the previous form (every round scoring the whole bank, its superposition counted
 * over the whole bank) picked: checked against that form, written out here, on random banks of odd k with
 * removed slots, with the TypeScript and the native kernels; and gatherSlots against MaskBank.get. From one
 * example with a background, the candidate banks hold only the live words (live-words.ts): the same picks on
 * random models, architectures whose rows do not start on words, every SIMD level.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { type MaskKernels } from '../src/core/kernels/mask-kernels.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { disposeDenseLayers } from '../src/core/masked-mlp.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import type { InferenceOptions } from '../src/contract/classify.ts';
import { inferTasks } from '../src/core/task-inference.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { randomMask } from './support/reference-mlp.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { loadModelInto } from '../src/model/model-store.ts';
import { normalizeInto } from '../src/core/given-task-pass.ts';
import type { Manifest } from '../src/model/manifest.ts';

const ARCH: Architecture = { inputSize: 30, hidden: [24, 16], outputs: 12, classes: 6 };
const OPTIONS: InferenceOptions = { method: 'binary', objective: 'entropy', decideFrom: 'batch', epsilon: 1 / 8, rerank: 1 };

/** The previous binary search: every round superposes its candidates from the whole bank and scores every slot. */
function previousBinarySearch(net: SupermaskNetwork, x: tf.Tensor2D): number {
  const lowerHalf = (candidates: Int32Array, grads: Float32Array) =>
    Int32Array.from(
      Array.from(candidates)
        .sort((a, b) => grads[a] - grads[b] || a - b)
        .slice(0, Math.ceil(candidates.length / 2)),
    ).sort();
  let candidates = lowerHalf(net.bank.occupiedSlots(), net.slotGradients(net.superposed(), x, OPTIONS.objective, false));
  while (candidates.length > 1) {
    const layers = net.subsetSuperposition(candidates);
    try {
      candidates = lowerHalf(candidates, net.slotGradients(layers, x, OPTIONS.objective, false));
    } finally {
      disposeDenseLayers(layers);
    }
  }
  return candidates[0];
}

function network(kernels: MaskKernels, k: number, removed: number[], rng: Xoshiro128, arch = ARCH, seed = 5): SupermaskNetwork {
  const net = new SupermaskNetwork(generateBaseNetwork(arch, seed), kernels);
  for (let t = 0; t < k; t++) net.addMask(randomMask(maskWords(arch), weightCount(arch), 0.5, () => rng.nextFloat()));
  for (const slot of removed) net.removeMask(slot);
  return net;
}

const native = loadNativeKernels();
const kernelSets: [string, MaskKernels | null, string | false][] = [
  ['typescript', typescriptKernels, false],
  ['native', native.kernels, native.kernels ? false : native.reason],
];

describe('binary search over packed candidates', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  for (const [name, kernels, skip] of kernelSets) {
    it(`${name}: picks what the whole-bank search picked (k = 1, 2, 3, 13, 37 with removed slots; 12 inputs each)`, { skip }, () => {
      const rng = new Xoshiro128(17);
      for (const [k, removed] of [[1, []], [2, []], [3, []], [4, [1]], [13, [4]], [37, [0, 9, 20]]] as [number, number[]][]) {
        const net = network(kernels!, k, removed, rng);
        try {
          for (let trial = 0; trial < 12; trial++) {
            const batch = 1 + (trial % 3);
            const x = tf.tensor2d(Float32Array.from({ length: batch * ARCH.inputSize }, () => rng.nextFloat()), [batch, ARCH.inputSize]);
            try {
              const [decision] = inferTasks(net, x, OPTIONS);
              assert.equal(decision.slot, previousBinarySearch(net, x), `k=${k} trial ${trial}`);
            } finally {
              x.dispose();
            }
          }
        } finally {
          net.dispose();
        }
      }
    });

    it(`${name}: the plain-array pass (scoresFromCounts) gives the tfjs pass's scores, both objectives, full and subset superpositions`, { skip }, () => {
      const rng = new Xoshiro128(29);
      const net = network(kernels!, 19, [2], rng);
      try {
        const subset = Int32Array.from([0, 3, 4, 9, 17]);
        const counts = new Float32Array(net.words * 32);
        kernels!.subsetCount(net.bank.raw, net.words, subset, counts);
        for (const objective of ['entropy', 'superfluous'] as const) {
          for (let trial = 0; trial < 4; trial++) {
            const data = Float32Array.from({ length: ARCH.inputSize }, () => rng.nextFloat() * 2 - 1);
            const x = tf.tensor2d(data, [1, ARCH.inputSize]);
            const layers = net.subsetSuperposition(subset);
            try {
              for (const [got, want] of [
                [net.scoresFromCounts(net.bank.count, net.bank.taskCount, data, objective), net.slotGradients(net.superposed(), x, objective, false)],
                [net.scoresFromCounts(counts, subset.length, data, objective), net.slotGradients(layers, x, objective, false)],
              ]) {
                const scale = Math.max(...want.map(Math.abs));
                assert.ok(scale > 0, 'the scores are not all zero');
                for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-4 * scale, `${objective} slot ${i}: ${got[i]} vs ${want[i]}`);
              }
            } finally {
              disposeDenseLayers(layers);
              x.dispose();
            }
          }
        }
      } finally {
        net.dispose();
      }
    });

    it(`${name}: gatherSlots packs the chosen masks in order, zero past them`, { skip }, () => {
      const rng = new Xoshiro128(3);
      const net = network(kernels!, 21, [6], rng);
      const words = net.words;
      for (const slots of [[0], [20, 3, 7], [1, 2, 3, 4, 5, 7, 8, 9, 10]]) {
        const blocks = Math.ceil(slots.length / BLOCK_SLOTS);
        const out = new Uint32Array(blocks * BLOCK_SLOTS * words).fill(0xdeadbeef);
        kernels!.gatherSlots(net.bank.raw, words, Int32Array.from(slots), out);
        for (let i = 0; i < blocks * BLOCK_SLOTS; i++) {
          const expected = i < slots.length ? net.bank.get(slots[i]) : new Uint32Array(words);
          for (let j = 0; j < words; j++) {
            const got = out[Math.floor(i / BLOCK_SLOTS) * words * BLOCK_SLOTS + j * BLOCK_SLOTS + (i % BLOCK_SLOTS)];
            if (got !== expected[j]) assert.fail(`slots [${slots}] position ${i} word ${j}: ${got} vs ${expected[j]}`);
          }
        }
      }
      assert.throws(() => kernels!.gatherSlots(net.bank.raw, words, Int32Array.from([99]), new Uint32Array(8 * words)), /outside the bank/);
      net.dispose();
    });
  }
});

describe('binary search from one example over the live words', () => {
  const addon = loadNativeAddon().addon;
  const best = addon?.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  // Rows of 24 and 37 weights: most rows of the input layer share a word with a neighbour.
  const architectures: Architecture[] = [ARCH, { inputSize: 41, hidden: [37, 13], outputs: 9, classes: 7 }];
  const X0 = -0.4242;
  /** An input whose background is X0 on about 60% of the pixels, as a normalised digit's. */
  const example = (rng: Xoshiro128, size: number) => Float32Array.from({ length: size }, () => (rng.nextFloat() < 0.6 ? X0 : rng.nextFloat() * 3.2 + X0));

  before(async () => {
    await selectBackend('wasm');
  });

  for (const level of order) {
    const skip = !addon ? loadNativeAddon().reason : order.indexOf(level) > order.indexOf(best!) ? `this CPU has no ${level}` : false;
    it(`native ${level}: picks what the whole-bank search picked (k = 2, 3, 5, 13, 37 and 70 with removed slots, two architectures, 3 models each)`, { skip }, () => {
      const rng = new Xoshiro128(61);
      const kernels = loadNativeKernels().kernels!;
      let live = 0;
      const gather = kernels.gatherSlots;
      kernels.gatherSlots = (...args) => (args[5] && live++, gather(...args));
      try {
        addon!.setSimdLevel(level);
        for (const arch of architectures) {
          for (const [k, removed] of [[2, []], [3, []], [5, [1]], [13, [4]], [37, [0, 9, 20]], [70, [3, 64]]] as [number, number[]][]) {
            for (const seed of [1, 2, 3]) {
              const net = network(kernels, k, removed, rng, arch, seed);
              try {
                for (let trial = 0; trial < 3; trial++) {
                  const x = tf.tensor2d(example(rng, arch.inputSize), [1, arch.inputSize]);
                  try {
                    assert.equal(inferTasks(net, x, OPTIONS)[0].slot, previousBinarySearch(net, x), `${level} ${arch.inputSize} inputs, k=${k}, model ${seed}, trial ${trial}`);
                  } finally {
                    x.dispose();
                  }
                }
              } finally {
                net.dispose();
              }
            }
          }
        }
        assert.ok(live > 0, 'the searches gathered live words');
      } finally {
        kernels.gatherSlots = gather;
        addon!.setSimdLevel('auto');
      }
    });
  }
});

describe('gatherSlots with counts', () => {
  const native = loadNativeAddon();
  const best = native.addon?.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  const levels: [string, SimdLevel | null, string | false][] = [
    ['typescript', null, false],
    ...order.map((level): [string, SimdLevel, string | false] => [
      `native ${level}`,
      level,
      !native.addon ? native.reason : order.indexOf(level) > order.indexOf(best!) ? `this CPU has no ${level}` : false,
    ]),
  ];
  for (const [name, level, skip] of levels) {
    it(`${name}: counts[w] = how many gathered masks keep w (0, 1, 2, 3, 9, 67 and 300 slots with repeats; 3 to 1100 words)`, { skip }, () => {
      const kernels = level ? loadNativeKernels().kernels! : typescriptKernels;
      const rng = new Xoshiro128(41);
      try {
        if (level) native.addon!.setSimdLevel(level);
        const random = (n: number, below: number) => Array.from({ length: n }, () => rng.nextInt(below));
        const cases: [number, number, number[]][] = [
          [3, 2, [0, 15, 7]],
          [7, 50, random(300, 400)],
          [5, 3, []],
          [5, 3, [4]],
          [5, 3, [23, 0]],
          [9, 4, [31, 8, 9]],
          // many words, odd counts of them; 67 slots: 9 blocks, the last one partly empty
          [1100, 12, random(67, 96)],
          [513, 2, random(9, 16)],
        ];
        for (const [words, blocks, picks] of cases) {
          const bank = Uint32Array.from({ length: words * blocks * BLOCK_SLOTS }, () => rng.nextUint32());
          const slots = Int32Array.from(picks);
          const out = new Uint32Array(Math.ceil(slots.length / BLOCK_SLOTS) * BLOCK_SLOTS * words);
          const counts = new Float32Array(words * 32).fill(-1), expected = new Float32Array(words * 32);
          kernels.gatherSlots(bank, words, slots, out, counts);
          typescriptKernels.subsetCount(bank, words, slots, expected);
          assert.deepEqual(counts, expected, `words=${words} slots=${slots.length}`);
          const plain = new Uint32Array(out.length);
          kernels.gatherSlots(bank, words, slots, plain);
          assert.deepEqual(out, plain, 'the gathered bank is the same with or without counts');
        }
      } finally {
        native.addon?.setSimdLevel('auto');
      }
    });
  }
});

describe('binary search on real digits (models/permuted-mnist-lenet, 250 PermutedMNIST tasks, 3 removed: k = 247 with holes)', () => {
  const addon = loadNativeAddon().addon;
  const best = addon?.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  let net: SupermaskNetwork;
  let digits: { task: string; x: Float32Array }[];
  let previous: number[];
  before(async () => {
    await selectBackend('wasm');
    let manifest: Manifest | undefined;
    manifest = await loadModelInto(
      'models/permuted-mnist-lenet',
      (m) => {
        manifest = m;
        net = new SupermaskNetwork(generateBaseNetwork(m.architecture, m.seed), native.kernels ?? typescriptKernels, m.tasks.length);
      },
      (_, mask) => void net.addMask(mask),
    );
    for (const slot of [3, 100, 249]) net.removeMask(slot);
    const test = loadDataset('mnist').test, size = test.width * test.height;
    digits = ['permuted-7', 'permuted-120', 'permuted-201', 'permuted-3'].map((task, i) => {
      const ds = taskDataset(manifest!.tasks.find((t) => t.id === task)!.transform, test);
      return { task, x: normalizeInto(ds.images.slice(i * 97 * size, (i * 97 + 1) * size), manifest!.normalization, new Float32Array(size)) };
    });
    previous = digits.map(({ x }) => {
      const t = tf.tensor2d(x, [1, size]);
      try {
        return previousBinarySearch(net, t);
      } finally {
        t.dispose();
      }
    });
  });
  after(() => net?.dispose());

  for (const level of order) {
    const skip = !addon ? loadNativeAddon().reason : order.indexOf(level) > order.indexOf(best!) ? `this CPU has no ${level}` : false;
    it(`native ${level}: picks what the whole-bank search picked`, { skip }, () => {
      try {
        addon!.setSimdLevel(level);
        digits.forEach(({ task, x }, i) => {
          const t = tf.tensor2d(x, [1, x.length]);
          try {
            assert.equal(inferTasks(net, t, OPTIONS)[0].slot, previous[i], `${task}: the previous search picked slot ${previous[i]}`);
          } finally {
            t.dispose();
          }
        });
      } finally {
        addon!.setSimdLevel('auto');
      }
    });
  }
});
