/**
 * MaskBank: canonical round trip, the per-weight count against brute force, growth, slot reuse, and the
 * resident size against the k·P/8 floor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BLOCK_SLOTS, MaskBank } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';

/** Seeded uniform [0, 1) stream, so failures reproduce. */
const rng = (seed: number): (() => number) => {
  const g = new Xoshiro128(seed);
  return () => g.nextFloat();
};

function randomMask(words: number, rand: () => number): Uint32Array {
  const m = new Uint32Array(words);
  for (let j = 0; j < words; j++) m[j] = Math.floor(rand() * 4294967296);
  return m;
}

function bruteCount(words: number, masks: Iterable<Uint32Array>): Uint16Array {
  const count = new Uint16Array(words * 32);
  for (const m of masks) for (let w = 0; w < words * 32; w++) count[w] += (m[w >>> 5] >>> (w & 31)) & 1;
  return count;
}

describe('MaskBank', () => {
  it('get() returns what add() stored, slot by slot', () => {
    const rand = rng(1);
    const bank = new MaskBank(13, 20);
    const masks = Array.from({ length: 20 }, () => randomMask(13, rand));
    const slots = masks.map((m) => bank.add(m));
    assert.deepEqual(slots, masks.map((_, i) => i));
    masks.forEach((m, i) => assert.deepEqual(bank.get(i), m));
    assert.equal(bank.taskCount, 20);
    assert.deepEqual([...bank.occupiedSlots()], slots);
  });

  it('with a bulk counter, count equals brute force whether many adds (one pass over the bank) or few (one by one) preceded it', () => {
    const rand = rng(9);
    const words = 5;
    let passes = 0;
    const bank = new MaskBank(words, 0, (...args) => {
      passes++;
      typescriptKernels.subsetCount(...args);
    });
    const stored = new Map<number, Uint32Array>();
    const add = (n: number) => {
      for (let i = 0; i < n; i++) {
        const m = randomMask(words, rand);
        stored.set(bank.add(m), m);
      }
    };
    add(100); // a load: counted in one pass
    assert.deepEqual(bank.count, bruteCount(words, stored.values()));
    assert.equal(passes, 1);
    add(2); // tasks added while serving: counted alone, no pass over the bank
    assert.deepEqual(bank.count, bruteCount(words, stored.values()));
    assert.equal(passes, 1);
    for (const slot of [3, 50, 101]) {
      bank.remove(slot);
      stored.delete(slot);
    }
    add(1); // fills slot 3 again, counted before the removal below
    bank.remove(7);
    stored.delete(7);
    assert.deepEqual(bank.count, bruteCount(words, stored.values()));
    add(40); // a batch large against k: one more pass
    assert.deepEqual(bank.count, bruteCount(words, stored.values()));
    assert.equal(passes, 2);
    for (const [slot, m] of stored) assert.deepEqual(bank.get(slot), m);
  });

  it('count equals the brute-force sum over stored masks after random adds and removes', () => {
    const rand = rng(2);
    const words = 7;
    const bank = new MaskBank(words);
    const stored = new Map<number, Uint32Array>();
    for (let step = 0; step < 300; step++) {
      if (stored.size > 0 && rand() < 0.4) {
        const keys = [...stored.keys()];
        const slot = keys[Math.floor(rand() * keys.length)];
        bank.remove(slot);
        stored.delete(slot);
      } else {
        const m = randomMask(words, rand);
        stored.set(bank.add(m), m);
      }
      if (step % 25 === 0 || step === 299) {
        assert.deepEqual(bank.count, bruteCount(words, stored.values()), `step ${step}`);
        assert.equal(bank.taskCount, stored.size);
      }
    }
    for (const [slot, m] of stored) assert.deepEqual(bank.get(slot), m);
  });

  it('count stays exact over a thousand adds between reads, all-ones masks included (long carry chains)', () => {
    const rand = rng(5);
    const bank = new MaskBank(3);
    const masks: Uint32Array[] = [];
    for (let t = 0; t < 1500; t++) {
      const m = t % 3 === 0 ? new Uint32Array(3).fill(0xffffffff) : randomMask(3, rand);
      masks.push(m);
      bank.add(m);
      if (t === 1023 || t === 1499) assert.deepEqual(bank.count, bruteCount(3, masks), `after ${t + 1} adds`);
    }
    bank.remove(7);
    masks.splice(7, 1);
    assert.deepEqual(bank.count, bruteCount(3, masks));
  });

  it('growth keeps earlier masks and their layout', () => {
    const rand = rng(3);
    const bank = new MaskBank(5); // expectedTasks 0: every block comes from grow()
    const masks: Uint32Array[] = [];
    let capacity = bank.slotCapacity;
    let growths = 0;
    for (let t = 0; t < 70; t++) {
      masks.push(randomMask(5, rand));
      bank.add(masks[t]);
      if (bank.slotCapacity !== capacity) {
        growths++;
        capacity = bank.slotCapacity;
        assert.equal(capacity % BLOCK_SLOTS, 0);
        assert.equal(bank.raw.length, capacity * 5);
      }
      masks.forEach((m, i) => assert.deepEqual(bank.get(i), m));
    }
    assert.ok(growths >= 8, `expected several growths, saw ${growths}`);
    assert.deepEqual(bank.count, bruteCount(5, masks));
  });

  it('a removed slot is zeroed in the raw store and is the next one reused', () => {
    const rand = rng(4);
    const words = 9;
    const bank = new MaskBank(words, 16);
    for (let t = 0; t < 12; t++) bank.add(randomMask(words, rand));
    const before = bank.raw.slice();
    bank.remove(10);
    assert.equal(bank.has(10), false);
    assert.throws(() => bank.get(10), RangeError);
    assert.throws(() => bank.remove(10), RangeError);
    const base = Math.floor(10 / BLOCK_SLOTS) * words * BLOCK_SLOTS + (10 % BLOCK_SLOTS);
    for (let j = 0; j < words; j++) assert.equal(bank.raw[base + j * BLOCK_SLOTS], 0);
    // No other slot's words changed.
    for (let i = 0; i < before.length; i++) {
      if (i >= base && (i - base) % BLOCK_SLOTS === 0 && i < base + words * BLOCK_SLOTS) continue;
      assert.equal(bank.raw[i], before[i], `word ${i}`);
    }
    bank.remove(4);
    const m = randomMask(words, rand);
    assert.equal(bank.add(m), 4, 'the lowest free slot is reused first');
    assert.equal(bank.add(randomMask(words, rand)), 10);
    assert.equal(bank.add(randomMask(words, rand)), 12);
    assert.deepEqual(bank.get(4), m);
  });

  it('rejects masks of the wrong shape', () => {
    const bank = new MaskBank(4);
    assert.throws(() => bank.add(new Uint32Array(3)), RangeError);
    assert.throws(() => bank.add(new Int32Array(4) as unknown as Uint32Array), RangeError);
    assert.throws(() => new MaskBank(0), RangeError);
  });

  for (const k of [100, 1000]) {
    it(`residentBytes is within 5% of k·P/8 for k = ${k}, P = 315,200 (LeNet s=500)`, () => {
      const P = 315_200;
      const words = Math.ceil(P / 32);
      const bank = new MaskBank(words, k);
      const initial = bank.residentBytes;
      // Sparse masks keep add() cheap; the resident size does not depend on the content.
      const m = new Uint32Array(words);
      for (let t = 0; t < k; t++) {
        m.fill(0);
        m[t % words] = 1 << (t % 32);
        bank.add(m);
      }
      assert.equal(bank.residentBytes, initial, 'expectedTasks = k: adding k masks must not grow the bank');
      const floor = (k * P) / 8;
      assert.ok(bank.residentBytes >= floor);
      assert.ok(bank.residentBytes <= floor * 1.05, `${bank.residentBytes} bytes vs k·P/8 = ${floor}`);
    });
  }
});
