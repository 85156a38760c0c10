/**
 * Multi-row scores (vectors in the SIMD lanes, one pass over the bank for many vectors): equal to R
 * single-vector calls, for odd word counts, odd numbers of stored tasks (empty slots in the last block),
 * R around the lane widths (8 and 16), on every SIMD level this CPU has; and the MaskKernels wrapper routes
 * R ≥ MULTI_ROW_MIN vectors to it. The fused per-example form (scoresOuter: V never materialised) against
 * the materialised V, and through SupermaskNetwork.slotGradients against the TypeScript kernels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, layerShapes, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { signedBase } from '../src/core/kernels/forward-bits.ts';
import { type MaskKernels } from '../src/core/kernels/mask-kernels.ts';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { randomMask } from './support/reference-mlp.ts';
import { loadNativeAddon, loadNativeKernels, MULTI_ROW_MIN, multiRowFrom, type SimdLevel } from '../src/platform/native-addon.ts';
import { typescriptKernels as oracle, typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { Xoshiro128 } from '../src/core/prng.ts';

/**
 * A bank of `k` random masks in `blocks` blocks; slots past k are zero, as empty slots are, and so are the
 * `holes` (removed tasks).
 */
function bankOf(words: number, blocks: number, k: number, rng: Xoshiro128, holes: number[] = []): Uint32Array {
  const bank = new Uint32Array(words * blocks * BLOCK_SLOTS);
  for (let i = 0; i < bank.length; i++) bank[i] = rng.nextUint32();
  for (const slot of [...holes, ...Array.from({ length: blocks * BLOCK_SLOTS - k }, (_, i) => k + i)]) {
    const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
    for (let j = 0; j < words; j++) bank[base + j * BLOCK_SLOTS] = 0;
  }
  return bank;
}

function vectors(n: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: n }, () => rng.nextFloat() * 2 - 1);
}

/** Row r of the multi-row result against a single-vector oracle call on vector r alone (tolerance from Σ|v|). */
function assertRowsMatch(bank: Uint32Array, words: number, blocks: number, v: Float32Array, rows: number, out: Float32Array, what: string): void {
  const slots = blocks * BLOCK_SLOTS;
  for (let r = 0; r < rows; r++) {
    const one = v.subarray(r * words * 32, (r + 1) * words * 32);
    const expected = new Float32Array(slots), scale = new Float32Array(slots);
    oracle.scores(bank, words, blocks, one, 1, expected);
    oracle.scores(bank, words, blocks, one.map(Math.abs), 1, scale);
    for (let i = 0; i < slots; i++) {
      const got = out[r * slots + i];
      if (!(Math.abs(got - expected[i]) <= 1e-5 * scale[i] + 1e-6)) assert.fail(`${what}: row ${r} slot ${i} = ${got}, expected ${expected[i]}`);
    }
  }
}

const native = loadNativeAddon();

describe('multi-row scores', { skip: native.addon ? false : native.reason }, () => {
  const addon = native.addon!;
  const best = addon.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: equals R single-row calls (odd words, odd k, R = 1, 3, 8, 9, 16, 17, 33)`, { skip }, () => {
      const rng = new Xoshiro128(21);
      try {
        assert.equal(addon.setSimdLevel(level), level);
        for (const [words, blocks, k] of [[1, 1, 3], [3, 2, 13], [37, 5, 39], [257, 3, 17]]) {
          const bank = bankOf(words, blocks, k, rng);
          for (const rows of [1, 3, 8, 9, 16, 17, 33]) {
            const v = vectors(rows * words * 32, rng);
            const out = new Float32Array(rows * blocks * BLOCK_SLOTS).fill(Number.NaN);
            addon.scoresMulti(bank, words, blocks, v, rows, out);
            assertRowsMatch(bank, words, blocks, v, rows, out, `${level} words=${words} k=${k} R=${rows}`);
          }
        }
      } finally {
        addon.setSimdLevel('auto');
      }
    });

    // From 512 slots on the kernel takes 8-bit lookup groups (64 KiB of tables a word for 16 lanes).
    it(`${level}: 8-bit groups on a large bank equal R single-row calls (R = 1 .. 17 and 33, odd words, odd k, holes)`, { skip }, () => {
      const rng = new Xoshiro128(23);
      try {
        assert.equal(addon.setSimdLevel(level), level);
        const [words, blocks, k] = [5, 65, 515];
        const bank = bankOf(words, blocks, k, rng, [0, 100, 257, 258]);
        for (const rows of [...Array.from({ length: 17 }, (_, i) => i + 1), 33]) {
          const v = vectors(rows * words * 32, rng);
          const out = new Float32Array(rows * blocks * BLOCK_SLOTS).fill(Number.NaN);
          addon.scoresMulti(bank, words, blocks, v, rows, out);
          assertRowsMatch(bank, words, blocks, v, rows, out, `${level} 8-bit words=${words} k=${k} R=${rows}`);
        }
      } finally {
        addon.setSimdLevel('auto');
      }
    });
  }

  it('the kernels route R >= MULTI_ROW_MIN vectors through it, with the same results', () => {
    const rng = new Xoshiro128(4);
    const kernels = loadNativeKernels().kernels!;
    const words = 99, blocks = 4;
    const bank = bankOf(words, blocks, 29, rng);
    for (const rows of [MULTI_ROW_MIN - 1, MULTI_ROW_MIN, 20]) {
      const v = vectors(rows * words * 32, rng);
      const out = new Float32Array(rows * blocks * BLOCK_SLOTS);
      kernels.scores(bank, words, blocks, v, rows, out);
      assertRowsMatch(bank, words, blocks, v, rows, out, `MaskKernels.scores R=${rows}`);
    }
  });

  it('scoresOuter equals the scores of the materialised V = (a ⊗ δ) ⊙ W, on every level (odd P, 1, 9, 17 examples, small and large bank)', () => {
    const rng = new Xoshiro128(8);
    const arch: Architecture = { inputSize: 13, hidden: [40, 7], outputs: 9, classes: 5 };
    const base = signedBase(arch, 2), net = generateBaseNetwork(arch, 2), shapes = layerShapes(arch);
    const words = base.words;
    try {
      for (const level of order.slice(0, order.indexOf(best) + 1)) {
        addon.setSimdLevel(level);
        for (const [blocks, k] of [[3, 21], [65, 517]]) {  // 4-bit and 8-bit lookup groups
          const bank = bankOf(words, blocks, k, rng, [9]);
          for (const rows of [1, 9, 17]) {
            const acts = shapes.map((s) => vectors(rows * s.in, rng));
            const deltas = shapes.map((s) => vectors(rows * s.out, rng));
            const v = new Float32Array(rows * words * 32);
            shapes.forEach((s, l) => {
              for (let e = 0; e < rows; e++)
                for (let i = 0; i < s.in; i++)
                  for (let j = 0; j < s.out; j++)
                    v[e * words * 32 + s.offset + i * s.out + j] = Math.fround(Math.fround(acts[l][e * s.in + i] * deltas[l][e * s.out + j]) * net.layers[l][i * s.out + j]);
            });
            const out = new Float32Array(rows * blocks * BLOCK_SLOTS).fill(Number.NaN);
            const flat = (xs: Float32Array[]) => Float32Array.from(xs.flatMap((x) => Array.from(x)));
            addon.scoresOuter(bank, words, blocks, base.signs, base.sizes, base.scales, flat(acts), flat(deltas), rows, out);
            assertRowsMatch(bank, words, blocks, v, rows, out, `scoresOuter ${level} blocks=${blocks} R=${rows}`);
          }
        }
      }
    } finally {
      addon.setSimdLevel('auto');
    }
  });

  it('per-example slot gradients through scoresOuter equal those through V and the TypeScript kernels', async () => {
    await selectBackend('wasm');
    const rng = new Xoshiro128(12);
    const arch: Architecture = { inputSize: 20, hidden: [16, 12], outputs: 8, classes: 4 };
    const make = (k: MaskKernels) => new SupermaskNetwork(generateBaseNetwork(arch, 4), k);
    const fused = make(loadNativeKernels().kernels!), plain = make(typescriptKernels);
    for (let t = 0; t < 11; t++) {
      const m = randomMask(maskWords(arch), weightCount(arch), 0.5, () => rng.nextFloat());
      fused.addMask(m);
      plain.addMask(m);
    }
    const x = tf.tensor2d(vectors(7 * arch.inputSize, rng).map(Math.abs), [7, arch.inputSize]);
    const a = fused.slotGradients(fused.superposed(), x, 'entropy', true);
    const b = plain.slotGradients(plain.superposed(), x, 'entropy', true);
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 + 1e-4 * Math.abs(b[i]), `[${i}] ${a[i]} vs ${b[i]}`);
    x.dispose();
    fused.dispose();
    plain.dispose();
  });

  it('scoresOfVectors: 4-row passes below multiRowFrom rows, one multi-row pass from there, both equal to single-row calls', () => {
    const rng = new Xoshiro128(31);
    const arch: Architecture = { inputSize: 20, hidden: [16, 12], outputs: 8, classes: 4 };
    const net = new SupermaskNetwork(generateBaseNetwork(arch, 4), loadNativeKernels().kernels!);
    for (let t = 0; t < 75; t++) net.addMask(randomMask(maskWords(arch), weightCount(arch), 0.5, () => rng.nextFloat()));
    const words = maskWords(arch), bank = net.bank;
    try {
      for (const level of order.slice(0, order.indexOf(best) + 1)) {
        addon.setSimdLevel(level);
        assert.equal(loadNativeKernels().kernels!.multiRowFrom, multiRowFrom(level));
        for (const rows of [5, 6, 8, 9, 17]) {
          const v = vectors(rows * words * 32, rng);
          assertRowsMatch(bank.raw, words, bank.blocks, v, rows, net.scoresOfVectors(v, rows), `scoresOfVectors ${level} R=${rows}`);
        }
      }
    } finally {
      addon.setSimdLevel('auto');
      net.dispose();
    }
  });

  it('rejects short arrays with a clear error', () => {
    const bank = new Uint32Array(8 * 4), v = new Float32Array(32 * 4 * 2), out = new Float32Array(16);
    assert.throws(() => addon.scoresMulti(bank, 4, 2, v, 2, out), /bank is shorter/);
    assert.throws(() => addon.scoresMulti(bank, 4, 1, v, 3, out), /v is shorter/);
    assert.throws(() => addon.scoresMulti(bank, 4, 1, v, 2, new Float32Array(15)), /out is shorter/);
  });
});
