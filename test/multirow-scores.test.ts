/**
 * Multi-row scores (vectors in the SIMD lanes, one pass over the bank for many vectors): equal to R
 * single-vector calls, for odd word counts, odd numbers of stored tasks (empty slots in the last block),
 * R around the lane widths (8 and 16), on every SIMD level this CPU has; and the MaskKernels wrapper routes
 * R ≥ MULTI_ROW_MIN vectors to it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { loadNativeAddon, loadNativeKernels, MULTI_ROW_MIN, type SimdLevel } from '../src/core/kernels/native-kernels.ts';
import { typescriptKernels as oracle } from '../src/core/kernels/typescript-kernels.ts';
import { Xoshiro128 } from '../src/core/prng.ts';

/** A bank of `k` random masks in `blocks` blocks; slots past k are zero, as empty slots are. */
function bankOf(words: number, blocks: number, k: number, rng: Xoshiro128): Uint32Array {
  const bank = new Uint32Array(words * blocks * BLOCK_SLOTS);
  for (let i = 0; i < bank.length; i++) bank[i] = rng.nextUint32();
  for (let slot = k; slot < blocks * BLOCK_SLOTS; slot++) {
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

  it('rejects short arrays with a clear error', () => {
    const bank = new Uint32Array(8 * 4), v = new Float32Array(32 * 4 * 2), out = new Float32Array(16);
    assert.throws(() => addon.scoresMulti(bank, 4, 2, v, 2, out), /bank is shorter/);
    assert.throws(() => addon.scoresMulti(bank, 4, 1, v, 3, out), /v is shorter/);
    assert.throws(() => addon.scoresMulti(bank, 4, 1, v, 2, new Float32Array(15)), /out is shorter/);
  });
});
