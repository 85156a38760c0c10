/**
 * The native superposed pass (native/superposed_pass.cc) against its reference, superposedV in
 * src/core/superposed-pass.ts: the same V bit for bit, for Uint16 and Float32 counts, both objectives, layer
 * sizes that are not multiples of any vector width, inputs with zeros, on every SIMD level this CPU has.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Architecture, layerShapes, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { superposedV, superposedVNative } from '../src/core/superposed-pass.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';

const native = loadNativeAddon();
const kernel = loadNativeKernels().kernels?.superposed;

describe('native superposed pass', { skip: native.addon && kernel ? false : native.reason }, () => {
  const addon = native.addon!;
  const best = addon.setSimdLevel('auto');
  const order: SimdLevel[] = ['scalar', 'avx2', 'avx512'];
  const architectures: Architecture[] = [
    { inputSize: 23, hidden: [17, 9], outputs: 7, classes: 5 },
    { inputSize: 784, hidden: [300, 100], outputs: 30, classes: 10 },
  ];
  for (const level of order) {
    const skip = order.indexOf(level) > order.indexOf(best) ? `this CPU has no ${level}` : false;
    it(`${level}: V equals superposedV bit for bit (Uint16 and Float32 counts, both objectives)`, { skip }, () => {
      const rng = new Xoshiro128(5);
      try {
        assert.equal(addon.setSimdLevel(level), level);
        for (const architecture of architectures) {
          const base = generateBaseNetwork(architecture, 3);
          const shapes = layerShapes(architecture);
          const P = weightCount(architecture), padded = maskWords(architecture) * 32;
          const weights = new Float32Array(P);
          base.layers.reduce((o, l) => (weights.set(l, o), o + l.length), 0);
          const sizes = Int32Array.from([architecture.inputSize, ...shapes.map((s) => s.out)]);
          const n = 37;
          const counts16 = Uint16Array.from({ length: padded }, () => rng.nextInt(n + 1));
          const counts32 = Float32Array.from(counts16, (c) => Math.max(0, c - rng.nextInt(3)));
          // a third of the pixels zero, as in real images (the forward pass skips them)
          const x = Float32Array.from({ length: architecture.inputSize }, () => (rng.nextFloat() < 0.33 ? 0 : rng.nextFloat() * 3 - 0.5));
          for (const counts of [counts16, counts32]) {
            for (const objective of ['entropy', 'superfluous'] as const) {
              const expected = new Float32Array(padded).fill(7), got = new Float32Array(padded).fill(7);
              superposedV(base.layers, shapes, counts, n, x, objective, architecture.classes, expected);
              superposedVNative(kernel!, weights, sizes, counts, n, x, objective, architecture.classes, got);
              assert.ok(expected.subarray(0, P).some((v) => v !== 0), `${objective} P=${P}: the case has a non-zero V`);
              assert.deepEqual(Buffer.from(got.buffer), Buffer.from(expected.buffer), `${level} ${counts.constructor.name} ${objective} P=${P}`);
            }
          }
        }
      } finally {
        addon.setSimdLevel('auto');
      }
    });
  }

  it('refuses mismatched arrays with a clear error', () => {
    const sizes = Int32Array.from([4, 3]);
    const w = new Float32Array(12), c = new Uint16Array(12), acts = new Float64Array(7);
    assert.throws(() => kernel!.forward(w, sizes, new Uint16Array(5), 2, new Float32Array(4), acts), /counts is shorter/);
    assert.throws(() => kernel!.forward(w, sizes, c, 0, new Float32Array(4), acts), /n must be/);
    assert.throws(() => kernel!.forward(w, sizes, c, 2, new Float32Array(4), new Float64Array(3)), /acts must be/);
    assert.throws(() => kernel!.backward(w, sizes, c, 2, acts, new Float64Array(2), new Float32Array(12)), /delta must be/);
    assert.throws(() => kernel!.backward(w, sizes, c, 2, acts, new Float64Array(3), new Float32Array(11)), /v must be/);
  });
});
