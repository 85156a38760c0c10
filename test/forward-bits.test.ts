/**
 * Given-task forward from the packed bits: the TypeScript reference against the float network built from
 * first principles, and the native forward (every SIMD level this CPU has) against the reference, for every
 * layer shape, batch 1, 7 and 128, an odd P, and slots inside 8-slot blocks. Then the engine's given-task
 * path with the native forward against the tfjs path that builds W ⊙ M^t.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type Architecture, maskWords, presetArchitecture, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Engine } from '../src/core/engine.ts';
import { forwardBitsTypescript, signedBase } from '../src/core/kernels/forward-bits.ts';
import { normalizeInto } from '../src/core/given-task-pass.ts';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { MaskBank } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { randomMask, referenceLogits } from './support/reference-mlp.ts';

const SEED = 3;
/** Odd P (37·70 + 70·5 + 5·13 = 3005), widths below, at and across the 32- and 64-column panels. */
const ODD: Architecture = { inputSize: 37, hidden: [70, 5], outputs: 13, classes: 10 };
const WIDE: Architecture = { inputSize: 20, hidden: [129, 64], outputs: 33, classes: 7 };
const LENET = presetArchitecture('lenet-300-100', 500);

function bankWith(arch: Architecture, tasks: number, rng: Xoshiro128): { bank: MaskBank; masks: Uint32Array[] } {
  const bank = new MaskBank(maskWords(arch));
  const masks = Array.from({ length: tasks }, () => randomMask(maskWords(arch), weightCount(arch), 0.5, () => rng.nextFloat()));
  for (const m of masks) bank.add(m);
  return { bank, masks };
}

/** Inputs in [-1, 1) with some exact zeros (as ReLU outputs have). */
function inputs(n: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.nextFloat() < 0.2 ? 0 : rng.nextFloat() * 2 - 1));
}

function assertClose(actual: Float32Array, expected: ArrayLike<number>, what: string): void {
  let scale = 1;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    if (!(Math.abs(actual[i] - expected[i]) <= 2e-5 * scale)) assert.fail(`${what}: [${i}] = ${actual[i]}, expected ${expected[i]}`);
  }
}

function run(forward: typeof forwardBitsTypescript, arch: Architecture, bank: MaskBank, slot: number, x: Float32Array, batch: number): Float32Array {
  const base = signedBase(arch, SEED);
  const out = new Float32Array(batch * arch.outputs).fill(Number.NaN);
  forward(bank.raw, bank.words, slot, base.signs, base.sizes, base.scales, x, batch, out);
  return out;
}

describe('forward from bits: TypeScript reference', () => {
  it('the sign bits and scales regenerate the base network', () => {
    for (const arch of [ODD, LENET]) {
      const base = signedBase(arch, SEED), net = generateBaseNetwork(arch, SEED);
      let w = 0;
      net.layers.forEach((layer, l) => {
        for (let i = 0; i < layer.length; i++, w++) {
          const sign = (base.signs[w >>> 5] >>> (w & 31)) & 1 ? 1 : -1;
          if (layer[i] !== sign * base.scales[l]) assert.fail(`weight ${w}: ${layer[i]} vs ${sign} · ${base.scales[l]}`);
        }
      });
    }
  });

  it('equals the float network W ⊙ M for every layer shape (odd P, batch 7, slots inside blocks)', () => {
    const rng = new Xoshiro128(5);
    for (const arch of [ODD, WIDE]) {
      const { bank, masks } = bankWith(arch, 11, rng);
      const net = generateBaseNetwork(arch, SEED);
      const x = inputs(7 * arch.inputSize, rng);
      for (const slot of [0, 5, 10]) {
        const out = run(forwardBitsTypescript, arch, bank, slot, x, 7);
        for (let b = 0; b < 7; b++) {
          const expected = referenceLogits(net, [masks[slot]], [1], x.subarray(b * arch.inputSize, (b + 1) * arch.inputSize));
          assertClose(out.subarray(b * arch.outputs, (b + 1) * arch.outputs), expected, `slot ${slot} row ${b}`);
        }
      }
    }
  });
});

const native = loadNativeAddon();

describe('forward from bits: native against the reference', { skip: native.addon ? false : native.reason }, () => {
  const addon = native.addon!;
  const best = addon.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: every layer shape, batch 1, 7, 128, odd P`, { skip }, () => {
      const rng = new Xoshiro128(9);
      try {
        assert.equal(addon.setSimdLevel(level), level);
        for (const arch of [ODD, WIDE, LENET]) {
          const { bank } = bankWith(arch, 13, rng);
          for (const batch of [1, 7, 128]) {
            const x = inputs(batch * arch.inputSize, rng);
            for (const slot of [0, 12]) {
              const expected = run(forwardBitsTypescript, arch, bank, slot, x, batch);
              assertClose(run(addon.forwardBits, arch, bank, slot, x, batch), expected, `${level} ${arch.hidden} batch ${batch} slot ${slot}`);
            }
          }
        }
      } finally {
        addon.setSimdLevel('auto');
      }
    });
  }

  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: normalize gives normalizeInto's bits (every length mod 8, non-finite values pass through)`, { skip }, () => {
      const rng = new Xoshiro128(4);
      const { mean, std } = MNIST_NORMALIZATION;
      try {
        assert.equal(addon.setSimdLevel(level), level);
        for (const n of [0, 1, 7, 8, 9, 784, 7 * 784 + 5]) {
          const x = Float32Array.from({ length: n }, (_, i) => (i % 97 === 3 ? [Infinity, -Infinity, NaN][i % 3] : rng.nextFloat() * 4 - 2));
          const expected = normalizeInto(x, { mean, std }, new Float32Array(n));
          const out = new Float32Array(n + 3).fill(42);
          addon.normalize!(x, mean, std, out);
          assert.deepEqual(out.subarray(0, n), expected, `${level} n = ${n}`);
          assert.deepEqual([...out.subarray(n)], [42, 42, 42], 'nothing written past x.length');
        }
        assert.throws(() => addon.normalize!(new Float32Array(4), mean, std, new Float32Array(3)), /at least as long as x/);
      } finally {
        addon.setSimdLevel('auto');
      }
    });
  }

  it('rejects bad arguments with a clear error', () => {
    const { bank } = bankWith(ODD, 3, new Xoshiro128(1));
    const base = signedBase(ODD, SEED);
    const x = new Float32Array(ODD.inputSize), out = new Float32Array(ODD.outputs);
    const call = (slot: number, sizes = base.sizes, xs = x) => () =>
      addon.forwardBits(bank.raw, bank.words, slot, base.signs, sizes, base.scales, xs, 1, out);
    assert.throws(call(8), /slot is outside the bank/);
    assert.throws(call(0, Int32Array.from([37, 70, 5, 99])), /more weights than words/);
    assert.throws(call(0, base.sizes, new Float32Array(3)), /x is shorter/);
    assert.throws(() => addon.setSimdLevel('sse' as never), /level must be/);
  });
});

describe('engine given-task path from bits', { skip: native.addon ? false : native.reason }, () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('gives the probabilities of the tfjs W ⊙ M path, for every task and batch row', () => {
    const rng = new Xoshiro128(2);
    const kernels = loadNativeKernels().kernels!;
    assert.ok(kernels.forwardBits, 'native kernels expose forwardBits');
    const make = (k: typeof kernels) => new Engine({ architecture: ODD, seed: SEED, normalization: { mean: 0.1, std: 0.3 }, kernels: k });
    const fromBits = make(kernels), dense = make(typescriptKernels);
    for (let t = 0; t < 9; t++) {
      const m = randomMask(maskWords(ODD), weightCount(ODD), 0.5, () => rng.nextFloat());
      fromBits.addTask(`t${t}`, m);
      dense.addTask(`t${t}`, m);
    }
    const x = Float32Array.from({ length: 5 * ODD.inputSize }, () => rng.nextFloat());
    for (const task of ['t0', 't4', 't8']) {
      const a = fromBits.classify(fromBits.validate({ inputs: x, batch: 5, task }));
      const b = dense.classify(dense.validate({ inputs: x, batch: 5, task }));
      a.forEach((p, row) => {
        assert.equal(p.label, b[row].label);
        p.probabilities.forEach((v, c) => assert.ok(Math.abs(v - b[row].probabilities[c]) < 1e-5, `${task} row ${row} class ${c}`));
      });
    }
    fromBits.dispose();
    dense.dispose();
  });
});
