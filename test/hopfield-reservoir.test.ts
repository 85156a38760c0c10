import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HopfieldReservoir, STORAGE_RULES, agreement, maskOf, patternOf } from '../src/core/hopfield-reservoir.ts';
import { Xoshiro128 } from '../src/core/prng.ts';

function randomPatterns(n: number, d: number, seed: number): Int8Array[] {
  const rng = new Xoshiro128(seed);
  return Array.from({ length: n }, () => Int8Array.from({ length: d }, () => (rng.nextUint32() & 1 ? 1 : -1)));
}

/** Cue: the pattern's bits at every `stride`-th index. */
function cueOf(z: Int8Array, stride: number): Map<number, number> {
  const cue = new Map<number, number>();
  for (let i = 0; i < z.length; i += stride) cue.set(i, z[i]);
  return cue;
}

describe('HopfieldReservoir', () => {
  it('Hebbian: Ψ is Σ z zᵀ / d, entry by entry', () => {
    const [a, b] = [Int8Array.of(1, -1, 1), Int8Array.of(-1, -1, 1)];
    const r = new HopfieldReservoir(3);
    r.store(a, 'hebbian');
    r.store(b, 'hebbian');
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(r.weights[i * 3 + j] - (a[i] * a[j] + b[i] * b[j]) / 3) < 1e-6);
    }
    assert.deepEqual(Array.from(r.patternSum), [0, -2, 2]);
    assert.equal(r.count, 2);
  });

  it('Storkey: Ψ ← Ψ + (z zᵀ − I − z hᵀ − h zᵀ) / d with h = Ψ z, and Ψ stays symmetric', () => {
    const d = 4;
    const [a, b] = [Int8Array.of(1, -1, 1, 1), Int8Array.of(-1, 1, 1, -1)];
    const r = new HopfieldReservoir(d);
    r.store(a, 'storkey');
    const after1 = Float64Array.from({ length: d * d }, (_, k) => (a[Math.floor(k / d)] * a[k % d] - (k % (d + 1) === 0 ? 1 : 0)) / d);
    r.weights.forEach((w, k) => assert.ok(Math.abs(w - after1[k]) < 1e-6));
    const h = Array.from({ length: d }, (_, i) => b.reduce((s, bj, j) => s + after1[i * d + j] * bj, 0));
    r.store(b, 'storkey');
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        const want = after1[i * d + j] + (b[i] * b[j] - (i === j ? 1 : 0) - b[i] * h[j] - h[i] * b[j]) / d;
        assert.ok(Math.abs(r.weights[i * d + j] - want) < 1e-6, `(${i},${j})`);
        assert.equal(r.weights[i * d + j], r.weights[j * d + i]);
      }
    }
  });

  for (const rule of STORAGE_RULES) {
    it(`${rule}: below capacity every stored pattern is recalled exactly from a quarter of its bits`, () => {
      const d = 512;
      const patterns = randomPatterns(20, d, 3); // 20 / 512 ≈ 0.04 d, well under 0.14 d
      const r = new HopfieldReservoir(d);
      for (const z of patterns) r.store(z, rule);
      for (const z of patterns) {
        const { pattern } = r.recallFromCue(cueOf(z, 4));
        assert.equal(agreement(pattern, z), d);
      }
    });

    it(`${rule}: the energy never rises along recall, and a stored pattern is a fixed point`, () => {
      const d = 256;
      const patterns = randomPatterns(12, d, 5);
      const r = new HopfieldReservoir(d);
      for (const z of patterns) r.store(z, rule);
      const { energies, sweeps } = r.recallFromCue(cueOf(patterns[4], 16));
      assert.ok(sweeps >= 2);
      for (let k = 1; k < energies.length; k++) assert.ok(energies[k] <= energies[k - 1] + 1e-9, `sweep ${k}: ${energies[k - 1]} → ${energies[k]}`);
      // Cued with all but bit 0: the first sweep sets bit 0 right, the second changes nothing.
      const full = new Map(Array.from(patterns[4], (v, i) => [i, v] as [number, number]));
      full.delete(0);
      const fixed = r.recallFromCue(full);
      assert.equal(fixed.sweeps, 2);
      assert.equal(agreement(fixed.pattern, patterns[4]), d);
      assert.ok(Math.abs(r.energy(patterns[4]) - fixed.energies[1]) < 1e-3);
    });
  }

  it('Storkey holds more than Hebbian past the Hebbian capacity', () => {
    const d = 256;
    const patterns = randomPatterns(60, d, 9); // 0.23 d: past Hebbian's ≈ 0.14 d
    const exact = (rule: (typeof STORAGE_RULES)[number]) => {
      const r = new HopfieldReservoir(d);
      for (const z of patterns) r.store(z, rule);
      return patterns.filter((z) => agreement(r.recallFromCue(cueOf(z, 2)).pattern, z) === d).length;
    };
    const hebbian = exact('hebbian');
    const storkey = exact('storkey');
    assert.ok(storkey > hebbian, `storkey ${storkey} vs hebbian ${hebbian} of 60`);
  });

  it('masks and patterns convert both ways; bad input is refused', () => {
    const m = Uint8Array.of(1, 0, 0, 1);
    assert.deepEqual(Array.from(patternOf(m)), [1, -1, -1, 1]);
    assert.deepEqual(maskOf(patternOf(m)), m);
    assert.throws(() => patternOf(Uint8Array.of(2)), /expected 0 or 1/);
    const r = new HopfieldReservoir(4);
    assert.throws(() => r.store(Int8Array.of(1, 1, 1), 'hebbian'), /has 4 entries/);
    assert.throws(() => r.store(Int8Array.of(1, 0, 1, 1), 'hebbian'), /expected ±1/);
    assert.throws(() => r.store(Int8Array.of(1, 1, 1, 1), 'oja' as never), /unknown storage rule/);
    assert.throws(() => r.recallFromCue(new Map([[9, 1]])), /bad cue/);
    assert.throws(() => new HopfieldReservoir(4, new Float32Array(3)), /16 entries/);
  });
});
