/**
 * MaskKernels: the TypeScript oracle against a brute-force definition built from MaskBank.get(), and the
 * native addon (each CPU path this machine can run) against the oracle, on odd sizes and random data.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { BLOCK_SLOTS, MaskBank } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import type { MaskKernels } from '../src/core/kernels/mask-kernels.ts';
import { loadNativeAddon, loadNativeKernels, NATIVE_ADDON_PATH } from '../src/platform/native-addon.ts';
import { selectKernels } from '../src/platform/kernels.ts';
import { typescriptKernels as oracle } from '../src/core/kernels/typescript-kernels.ts';

/** Seeded uniform [0, 1) stream, so failures reproduce. */
const rng = (seed: number): (() => number) => {
  const g = new Xoshiro128(seed);
  return () => g.nextFloat();
};

function randomWords(n: number, rand: () => number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 4294967296);
  return out;
}

/** Random v in [-1, 1) (negative values included). */
function randomV(n: number, rand: () => number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rand() * 2 - 1;
  return v;
}

/** A raw bank with random bits; slots in `empty` are zeroed, like removed or never-filled slots. */
function randomBank(words: number, blocks: number, rand: () => number, empty: number[] = []): Uint32Array {
  const bank = randomWords(words * blocks * BLOCK_SLOTS, rand);
  for (const slot of empty) {
    const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
    for (let j = 0; j < words; j++) bank[base + j * BLOCK_SLOTS] = 0;
  }
  return bank;
}

function bit(mask: Uint32Array, w: number): boolean {
  return ((mask[w >>> 5] >>> (w & 31)) & 1) === 1;
}

/** Float sums in another order differ by rounding: allow 1e-5 of Σ|terms| (float32 has ~6e-8). */
function assertScoresClose(actual: Float32Array, expected: Float32Array, scale: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < actual.length; i++) {
    const tol = 1e-5 * scale[i] + 1e-6;
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      assert.fail(`${what}: out[${i}] = ${actual[i]}, expected ${expected[i]} (tolerance ${tol})`);
    }
  }
}

describe('TypeScript oracle against brute force from MaskBank.get()', () => {
  // P not a multiple of 32, so the canonical masks have zero padding bits.
  const P = 37 * 32 - 13;
  const words = Math.ceil(P / 32);
  const rand = rng(7);
  const bank = new MaskBank(words);
  const masks: Uint32Array[] = [];
  for (let t = 0; t < 21; t++) {
    const m = randomWords(words, rand);
    m[words - 1] &= (1 << (P % 32)) - 1;
    masks.push(m);
    bank.add(m);
  }
  bank.remove(3);
  bank.remove(17);
  const slots = bank.slotCapacity;

  it('scores equal Σ v·bit over each stored mask, 0 for empty slots, for 1 and 3 vectors', () => {
    for (const examples of [1, 3]) {
      const v = randomV(examples * words * 32, rand);
      for (let w = P; w < words * 32; w++) for (let e = 0; e < examples; e++) v[e * words * 32 + w] = 0;
      const out = new Float32Array(examples * slots).fill(Number.NaN);
      oracle.scores(bank.raw, words, bank.blocks, v, examples, out);
      const expected = new Float32Array(examples * slots);
      const scale = new Float32Array(examples * slots);
      for (let e = 0; e < examples; e++) {
        for (let s = 0; s < slots; s++) {
          if (!bank.has(s)) continue;
          const m = bank.get(s);
          let sum = 0, abs = 0;
          for (let w = 0; w < P; w++) {
            if (bit(m, w)) {
              sum += v[e * words * 32 + w];
              abs += Math.abs(v[e * words * 32 + w]);
            }
          }
          expected[e * slots + s] = sum;
          scale[e * slots + s] = abs;
        }
      }
      assertScoresClose(out, expected, scale, `oracle scores, ${examples} vectors`);
      for (const s of [3, 17]) for (let e = 0; e < examples; e++) assert.equal(out[e * slots + s], 0);
    }
  });

  it('subsetCount equals the brute-force count over the chosen masks', () => {
    const occupied = [...bank.occupiedSlots()];
    const sets = [[], [occupied[0]], occupied, occupied.filter(() => rand() < 0.5), [3, 3, 5]];
    for (const set of sets) {
      const out = new Float32Array(words * 32).fill(Number.NaN);
      oracle.subsetCount(bank.raw, words, Int32Array.from(set), out);
      for (let w = 0; w < words * 32; w++) {
        let n = 0;
        for (const s of set) if (bank.has(s) && bit(bank.get(s), w)) n++;
        if (out[w] !== n) assert.fail(`subsetCount([${set.length} slots])[${w}] = ${out[w]}, expected ${n}`);
      }
    }
  });

  it('subsetCount over all stored masks equals MaskBank.count', () => {
    const out = new Float32Array(words * 32);
    oracle.subsetCount(bank.raw, words, bank.occupiedSlots(), out);
    assert.deepEqual(Array.from(out), Array.from(bank.count));
  });
});

const native = loadNativeAddon();
const paths = native.addon ? (['avx512', 'avx2', 'scalar'] as const) : [];
const PATH_RANK = { scalar: 0, avx2: 1, avx512: 2 } as const;

describe('native kernels against the TypeScript oracle', { skip: native.addon ? false : native.reason }, () => {
  const addon = native.addon!;
  const kernels = loadNativeKernels().kernels!;

  for (const path of paths) {
    describe(`path ${path}`, () => {
      const run = (fn: () => void) => () => {
        try {
          // A path the CPU lacks: nothing to test (the best path it has is tested under its own name).
          if (PATH_RANK[path] > PATH_RANK[addon.setCpuPath('auto') as keyof typeof PATH_RANK]) return;
          addon.setCpuPath(path);
          assert.equal(kernels.name, `native-${path}`);
          fn();
        } finally {
          addon.setCpuPath('auto');
        }
      };

      it('scores agree on random data (words 1, 3, 37, 9850; blocks 1, 2, 5, 7; 1 and 3 vectors)', run(() => {
        const rand = rng(11);
        for (const words of [1, 3, 37, 9850]) {
          for (const blocks of [1, 2, 5, 7]) {
            const bank = randomBank(words, blocks, rand, [blocks * BLOCK_SLOTS - 1]);
            for (const examples of [1, 3]) {
              const v = randomV(examples * words * 32, rand);
              const absV = v.map(Math.abs);
              const expected = new Float32Array(examples * blocks * BLOCK_SLOTS);
              const scale = new Float32Array(expected.length);
              oracle.scores(bank, words, blocks, v, examples, expected);
              oracle.scores(bank, words, blocks, absV, examples, scale);
              const out = new Float32Array(expected.length).fill(Number.NaN);
              kernels.scores(bank, words, blocks, v, examples, out);
              assertScoresClose(out, expected, scale, `${path} words=${words} blocks=${blocks} examples=${examples}`);
            }
          }
        }
      }));

      it('scores on a larger bank (many tiles and blocks, both threads busy), identical on every run', run(() => {
        const rand = rng(12);
        const words = 1000, blocks = 40;
        const bank = randomBank(words, blocks, rand, [5, 100, 319]);
        const v = randomV(words * 32, rand);
        const expected = new Float32Array(blocks * BLOCK_SLOTS), scale = new Float32Array(blocks * BLOCK_SLOTS);
        oracle.scores(bank, words, blocks, v, 1, expected);
        oracle.scores(bank, words, blocks, v.map(Math.abs), 1, scale);
        const out = new Float32Array(blocks * BLOCK_SLOTS);
        let first: Float32Array | undefined;
        for (let r = 0; r < 5; r++) {
          kernels.scores(bank, words, blocks, v, 1, out);
          assertScoresClose(out, expected, scale, `${path} large, run ${r}`);
          // The sum order must not depend on thread timing: same input, same bits.
          if (first) assert.deepEqual(out, first, `run ${r} differs from run 0`);
          else first = out.slice();
        }
        for (const s of [5, 100, 319]) assert.equal(out[s], 0);
      }));

      it('subsetCount agrees exactly (empty, single, all, random, duplicated slot sets)', run(() => {
        const rand = rng(13);
        for (const words of [1, 3, 37, 9850]) {
          for (const blocks of [1, 2, 5]) {
            const bank = randomBank(words, blocks, rand, [1]);
            const all = Array.from({ length: blocks * BLOCK_SLOTS }, (_, i) => i);
            const shuffled = [...all].sort(() => rand() - 0.5);
            const sets = [[], [all.length - 1], all, shuffled.filter(() => rand() < 0.5), [0, 0, 2]];
            for (const set of sets) {
              const slots = Int32Array.from(set);
              const expected = new Float32Array(words * 32);
              oracle.subsetCount(bank, words, slots, expected);
              const out = new Float32Array(words * 32).fill(Number.NaN);
              kernels.subsetCount(bank, words, slots, out);
              assert.deepEqual(out, expected, `${path} words=${words} blocks=${blocks} |slots|=${set.length}`);
            }
          }
        }
      }));

      it('subsetCount past 255 slots (byte counters are flushed)', run(() => {
        const rand = rng(14);
        const words = 5, blocks = 70;
        const bank = randomBank(words, blocks, rand);
        const slots = Int32Array.from({ length: blocks * BLOCK_SLOTS }, (_, i) => i);
        const expected = new Float32Array(words * 32), out = new Float32Array(words * 32);
        oracle.subsetCount(bank, words, slots, expected);
        kernels.subsetCount(bank, words, slots, out);
        assert.deepEqual(out, expected);
        // Every bit set in all 560 slots: the count must reach 560, not wrap at 256.
        bank.fill(0xffffffff);
        kernels.subsetCount(bank, words, slots, out);
        assert.ok(out.every((c) => c === blocks * BLOCK_SLOTS));
      }));
    });
  }

  it('works from worker threads, also while the main thread uses it (the helper thread is shared)', async () => {
    const rand = rng(15);
    const words = 2000, blocks = 12;
    const bank = randomBank(words, blocks, rand);
    const v = randomV(words * 32, rand);
    const expected = new Float32Array(blocks * BLOCK_SLOTS);
    kernels.scores(bank, words, blocks, v, 1, expected);
    const code = `
      const { parentPort, workerData: d } = require('node:worker_threads');
      const addon = require(d.path);
      const out = new Float32Array(d.blocks * 8);
      for (let r = 0; r < 20; r++) addon.scores(d.bank, d.words, d.blocks, d.v, 1, out);
      parentPort.postMessage(out);`;
    const workers = [0, 1].map(
      () =>
        new Promise<Float32Array>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { path: NATIVE_ADDON_PATH, bank, words, blocks, v } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    const out = new Float32Array(blocks * BLOCK_SLOTS);
    for (let r = 0; r < 20; r++) {
      kernels.scores(bank, words, blocks, v, 1, out);
      assert.deepEqual(out, expected);
    }
    for (const result of await Promise.all(workers)) assert.deepEqual(result, expected);
  });

  it('readFloor reads every byte (checksum of a known buffer)', () => {
    const bytes = new Uint8Array((3 << 20) + 13);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    // Sum of the little-endian 64-bit words, and of the leftover bytes: recomputed with BigInt.
    let sum = 0n;
    const dv = new DataView(bytes.buffer);
    const whole = bytes.length - (bytes.length % 8);
    for (let i = 0; i < whole; i += 8) sum += dv.getBigUint64(i, true);
    for (let i = whole; i < bytes.length; i++) sum += BigInt(bytes[i]);
    const expected = Number(sum & ((1n << 53n) - 1n));
    assert.equal(addon.readFloor(bytes), expected);
    assert.equal(addon.readFloor(bytes.buffer), expected);
  });

  it('rejects arrays too short for the shapes instead of reading past them', () => {
    const bank = new Uint32Array(3 * 8);
    assert.throws(() => addon.scores(bank, 3, 2, new Float32Array(96), 1, new Float32Array(16)), RangeError);
    assert.throws(() => addon.scores(bank, 3, 1, new Float32Array(95), 1, new Float32Array(8)), RangeError);
    assert.throws(() => addon.scores(bank, 3, 1, new Float32Array(96), 1, new Float32Array(7)), RangeError);
    assert.throws(() => addon.scores(bank, 0, 1, new Float32Array(96), 1, new Float32Array(8)), RangeError);
    assert.throws(() => addon.subsetCount(bank, 3, Int32Array.of(8), new Float32Array(96)), RangeError);
    assert.throws(() => addon.subsetCount(bank, 3, Int32Array.of(-1), new Float32Array(96)), RangeError);
    assert.throws(() => addon.subsetCount(bank, 3, Int32Array.of(0), new Float32Array(95)), RangeError);
    assert.throws(() => addon.scores(new Float32Array(24) as never, 3, 1, new Float32Array(96), 1, new Float32Array(8)), TypeError);
  });
});

describe('selectKernels', () => {
  it("'typescript' gives the TypeScript kernels", () => {
    assert.equal(selectKernels('typescript').kernels.name, 'typescript');
  });
  it("'auto' gives native when it loads, TypeScript with the reason otherwise", () => {
    const { kernels, reason } = selectKernels('auto');
    if (native.addon) assert.match(kernels.name, /^native-/);
    else assert.equal(kernels.name, 'typescript');
    assert.ok(reason.length > 0 && !reason.includes('\n'));
  });
  it("'native' throws a one-line reason when the addon is unavailable", () => {
    if (native.addon) assert.match(selectKernels('native').kernels.name, /^native-/);
    else assert.throws(() => selectKernels('native'), /native kernels requested but unavailable/);
  });
});

describe('argument checks (TypeScript)', () => {
  const bank = new Uint32Array(3 * 8);
  it('rejects short arrays and out-of-range slots', () => {
    assert.throws(() => oracle.scores(bank, 3, 2, new Float32Array(96), 1, new Float32Array(16)), RangeError);
    assert.throws(() => oracle.subsetCount(bank, 3, Int32Array.of(8), new Float32Array(96)), RangeError);
  });
});

export type { MaskKernels };
