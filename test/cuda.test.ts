/**
 * The CUDA path (native/cuda/, src/platform/cuda/).
 *
 * - Everywhere: the backend choice without a device (one-line reason, fallback for `auto`, an error for `cuda`).
 * - Where nvcc exists: the CUDA sources compile for sm_90 (Hopper) and sm_75 (the oldest target CUDA 13 keeps).
 * - Where a CUDA device exists (and build/cuda/supsup_cuda.node is built): the CUDA kernels against the CPU ones
 *   on random data with odd sizes (k not a multiple of 8, P not a multiple of 32, batch 1 and 128), and the
 *   engine on the bundled model with backend cuda against wasm. Skipped elsewhere with the probe's reason.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { typescriptKernels as oracle } from '../src/core/kernels/typescript-kernels.ts';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { OBJECTIVES } from '../src/contract/classify.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { probeCuda } from '../src/platform/cuda/cuda-addon.ts';
import { loadCudaKernels } from '../src/platform/cuda/cuda-kernels.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import { randomMask } from './support/reference-mlp.ts';

const probe = probeCuda();
const noDevice = probe.addon ? false : `no CUDA device here: ${probe.reason}`;
const nvcc = [process.env.NVCC, '/usr/local/cuda/bin/nvcc'].find((p) => p && existsSync(p)) ?? whichNvcc();

function whichNvcc(): string | undefined {
  try {
    return execFileSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function uniform(seed: number): () => number {
  const g = new Xoshiro128(seed);
  return () => g.nextFloat();
}

function randomFloats(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

/** A raw bank of random bits with the given slots cleared (removed or never filled). */
function randomRawBank(words: number, blocks: number, rand: () => number, empty: number[]): Uint32Array {
  const bank = Uint32Array.from({ length: words * blocks * BLOCK_SLOTS }, () => Math.floor(rand() * 2 ** 32));
  for (const s of empty) for (let j = 0; j < words; j++) bank[Math.floor(s / BLOCK_SLOTS) * words * BLOCK_SLOTS + j * BLOCK_SLOTS + (s % BLOCK_SLOTS)] = 0;
  return bank;
}

/** |a − b| ≤ rel · scale + abs, element by element, with the first failure named. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number> | number, rel: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const s = typeof scale === 'number' ? scale : scale[i];
    const tol = rel * s + 1e-6;
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) assert.fail(`${what}: [${i}] = ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
  }
}

describe('backend choice without a CUDA device', { skip: probe.addon ? 'a CUDA device is present' : false }, () => {
  it('auto falls back with the reason in one line; an explicit cuda request fails with it', async () => {
    const auto = await selectBackend('auto');
    assert.notEqual(auto.name, 'cuda');
    assert.ok(auto.reason.startsWith(probe.reason), auto.reason);
    assert.ok(!auto.reason.includes('\n'));
    await assert.rejects(selectBackend('cuda'), (e: Error) => e.message === `backend "cuda" unavailable: ${probe.reason}`);
    assert.equal(loadCudaKernels().kernels, null);
  });
});

const compileSkip = process.env.SUPSUP_SKIP_NVCC === '1' ? 'SUPSUP_SKIP_NVCC=1' : nvcc ? false : 'nvcc not found (set NVCC or install the CUDA toolkit)';

describe('CUDA sources compile', { skip: compileSkip }, () => {
  it('for sm_90 and sm_75 (native/cuda/build.sh --check; SUPSUP_SKIP_NVCC=1 skips it)', () => {
    const out = execFileSync('native/cuda/build.sh', ['--check'], { encoding: 'utf8', env: { ...process.env, NVCC: nvcc! } });
    assert.match(out, /compiles for sm_90/);
    assert.match(out, /compiles for sm_75/);
  });
});

describe('CUDA kernels against the CPU kernels', { skip: noDevice }, () => {
  const cuda = () => loadCudaKernels().kernels!;

  it('scores: words 1, 37, 8600; blocks 1, 3, 126 (k = 1003); 1, 3 and 128 vectors', () => {
    const rand = uniform(21);
    for (const [words, blocks, examples] of [[1, 1, 1], [37, 3, 3], [37, 3, 128], [8600, 126, 1], [301, 5, 128]]) {
      const bank = randomRawBank(words, blocks, rand, [blocks * BLOCK_SLOTS - 1, 0]);
      const v = randomFloats(examples * words * 32, rand);
      const expected = new Float32Array(examples * blocks * BLOCK_SLOTS);
      const scale = new Float32Array(expected.length);
      oracle.scores(bank, words, blocks, v, examples, expected);
      oracle.scores(bank, words, blocks, v.map(Math.abs), examples, scale);
      const out = new Float32Array(expected.length).fill(Number.NaN);
      cuda().scores(bank, words, blocks, v, examples, out);
      assertClose(out, expected, scale, 1e-5, `scores words=${words} blocks=${blocks} examples=${examples}`);
      const again = new Float32Array(expected.length);
      cuda().scores(bank, words, blocks, v, examples, again);
      assert.deepEqual(again, out, 'the same input gives the same bits');
    }
  });

  it('subsetCount agrees exactly (empty, one, all, random, duplicated slots)', () => {
    const rand = uniform(22);
    for (const [words, blocks] of [[1, 1], [37, 3], [8600, 126]]) {
      const bank = randomRawBank(words, blocks, rand, [1]);
      const all = Array.from({ length: blocks * BLOCK_SLOTS }, (_, i) => i);
      for (const set of [[], [all.length - 1], all, all.filter(() => rand() < 0.3), [0, 0, 2]]) {
        const expected = new Float32Array(words * 32);
        oracle.subsetCount(bank, words, Int32Array.from(set), expected);
        const out = new Float32Array(words * 32).fill(Number.NaN);
        cuda().subsetCount(bank, words, Int32Array.from(set), out);
        assert.deepEqual(out, expected, `subsetCount words=${words} |slots|=${set.length}`);
      }
    }
  });

  it('rejects slots outside the bank with a RangeError', () => {
    const bank = randomRawBank(3, 1, uniform(23), []);
    assert.throws(() => cuda().subsetCount(bank, 3, Int32Array.of(8), new Float32Array(96)), RangeError);
  });
});

describe('the network resident on the device against the CPU path', { skip: noDevice }, () => {
  // Odd sizes: P = 37·29 + 29·13 + 13·11 = 1593, not a multiple of 32; k = 13 masks, not a multiple of 8.
  const arch: Architecture = { inputSize: 37, hidden: [29, 13], outputs: 11, classes: 7 };
  const seed = 5;
  let cpu: SupermaskNetwork, gpu: SupermaskNetwork;

  before(async () => {
    await selectBackend('wasm');
    const rand = uniform(31);
    cpu = new SupermaskNetwork(generateBaseNetwork(arch, seed), oracle);
    gpu = new SupermaskNetwork(generateBaseNetwork(arch, seed), loadCudaKernels().kernels!);
    for (let t = 0; t < 13; t++) {
      const m = randomMask(maskWords(arch), weightCount(arch), 0.3 + 0.4 * rand(), rand);
      cpu.addMask(m);
      gpu.addMask(m);
    }
  });

  const inputs = (batch: number, seedValue: number) => {
    const rand = uniform(seedValue);
    return tf.tensor2d(Float32Array.from({ length: batch * arch.inputSize }, () => rand() * 2 - 1), [batch, arch.inputSize]);
  };

  it('given-task logits, batch 1 and 128, every slot', () => {
    for (const batch of [1, 128]) {
      const x = inputs(batch, 40 + batch);
      for (const slot of cpu.bank.occupiedSlots()) {
        const want = tf.tidy(() => cpu.taskLogits(slot, x).dataSync());
        const got = tf.tidy(() => gpu.taskLogits(slot, x).dataSync());
        const scale = Math.max(...Array.from(want, Math.abs));
        assertClose(got, want, scale, 1e-5, `taskLogits slot ${slot} batch ${batch}`);
      }
      x.dispose();
    }
  });

  it('∂obj/∂α over all slots and over subsets: both objectives, batch mean and per example, batch 1 and 128', () => {
    for (const batch of [1, 128]) {
      const x = inputs(batch, 50 + batch);
      for (const objective of OBJECTIVES) {
        for (const perExample of [false, true]) {
          for (const subset of [undefined, Int32Array.of(0, 2, 3, 7, 8, 12), Int32Array.of(5)]) {
            const want = cpu.gradientsOver(x, objective, perExample, subset);
            const got = gpu.gradientsOver(x, objective, perExample, subset);
            const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
            assertClose(got, want, scale, 1e-4, `gradients ${objective} perExample=${perExample} batch=${batch} subset=${subset?.length ?? 'all'}`);
          }
        }
      }
      x.dispose();
    }
  });

  it('follows the bank through removals, re-adds and growth', () => {
    const rand = uniform(33);
    cpu.removeMask(4);
    gpu.removeMask(4);
    for (let t = 0; t < 9; t++) { // fills slot 4, then grows past 16 slots
      const m = randomMask(maskWords(arch), weightCount(arch), 0.5, rand);
      assert.equal(gpu.addMask(m), cpu.addMask(m));
    }
    const x = inputs(3, 60);
    const want = cpu.gradientsOver(x, 'entropy', true);
    const got = gpu.gradientsOver(x, 'entropy', true);
    assertClose(got, want, Math.max(...Array.from(want, Math.abs)), 1e-4, 'gradients after changes');
    for (const slot of [4, 20]) {
      const a = tf.tidy(() => cpu.taskLogits(slot, x).dataSync());
      const b = tf.tidy(() => gpu.taskLogits(slot, x).dataSync());
      assertClose(b, a, Math.max(...Array.from(a, Math.abs)), 1e-5, `logits slot ${slot} after changes`);
    }
    x.dispose();
  });
});

describe('engine with backend cuda against wasm on the bundled model', { skip: noDevice }, () => {
  it('same labels, tasks and probabilities, given and inferred, batch 1 and 128', async () => {
    const gpu = await openEngine('models/example-lenet', { backend: 'cuda' });
    assert.equal(gpu.backend.name, 'cuda');
    assert.equal(gpu.kernels.name, 'cuda');
    const cpu = await openEngine('models/example-lenet', { backend: 'wasm', kernels: 'typescript' });
    const rand = uniform(70);
    for (const batch of [1, 128]) {
      const inputs = Float32Array.from({ length: batch * 784 }, () => rand());
      for (const extra of [{ task: cpu.manifest.tasks[3].id }, {}, { inference: { decideFrom: 'each' as const } }, { inference: { method: 'binary' as const } }]) {
        const a = cpu.engine.classify(cpu.engine.validate({ inputs, batch, ...extra }));
        const b = gpu.engine.classify(gpu.engine.validate({ inputs, batch, ...extra }));
        b.forEach((p, i) => {
          assert.equal(p.task.id, a[i].task.id, `task, batch ${batch} ${JSON.stringify(extra)}`);
          assert.equal(p.label, a[i].label);
          assertClose(p.probabilities, a[i].probabilities, 1, 1e-4, 'probabilities');
        });
      }
    }
    gpu.engine.dispose();
    cpu.engine.dispose();
  });
});
