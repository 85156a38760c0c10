/**
 * Training's matrix products: the native GEMM (native/train_gemm.cc) on every path this CPU has, against a
 * float64 product and against the tfjs (wasm) fallback, one step and a whole task; and a short training run on
 * the full MNIST with the products the trainer picks by default.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { type Architecture, layerShapes, presetArchitecture } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { type DatasetSplits, loadDataset } from '../src/data/datasets.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { BatchSampler, taskSource } from '../src/train/batches.ts';
import { typescriptScoreUpdate } from '../src/core/score-update.ts';
import { nativeStepProducts, selectStepProducts, tfjsStepProducts } from '../src/train/step-products.ts';
import { crossEntropyGradient } from '../src/core/masked-mlp.ts';
import { initialScores, trainSupermask } from '../src/train/trainer.ts';
import { referenceLogits } from './support/reference-mlp.ts';

const NORM = { mean: 0.1307, std: 0.3081 };
const { addon } = loadNativeAddon();
const matmul = addon?.matmul;
const noGemm = matmul ? false : 'native addon not built with native/train_gemm.cc (npm run build:native)';
/** The native paths this CPU runs, best first; the others are skipped (reported by the first test's name). */
const paths = (['avx512', 'avx2', 'scalar'] as const).filter((p) => {
  if (!addon?.setSimdLevel) return false;
  try {
    addon.setSimdLevel(p);
    return true;
  } catch {
    return false;
  } finally {
    addon.setSimdLevel('auto');
  }
});

function random(n: number, rng: Xoshiro128, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * rng.nextFloat() - 1) * scale);
}

function withPath<T>(path: string, fn: () => T): T {
  addon!.setSimdLevel(path as 'auto');
  try {
    return fn();
  } finally {
    addon!.setSimdLevel('auto');
  }
}

function transposed(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

let mnist: DatasetSplits;
before(async () => {
  await selectBackend('wasm');
  mnist = loadDataset('mnist');
});

describe('native GEMM', { skip: noGemm }, () => {
  it(`every path this CPU has (${paths.join(', ')}) gives the same bits, within float rounding of a float64 product`, () => {
    const rng = new Xoshiro128(3);
    // Edges of every tile size (8×32, 6×16, 4×16), K across several K blocks (kc ≤ 256), k = 1.
    for (const [m, k, n] of [[37, 600, 45], [128, 300, 100], [5, 1, 33], [300, 128, 17]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const A = random(m * k, rng), B = random(k * n, rng);
          const results = paths.map((p) =>
            withPath(p, () => {
              const C = new Float32Array(m * n).fill(Number.NaN);
              matmul!(A, B, C, m, k, n, transA, transB, false, null);
              return C;
            }),
          );
          const what = `${m}×${k}×${n} transA ${transA} transB ${transB}`;
          results.forEach((C, i) => assert.ok(Buffer.from(C.buffer).equals(Buffer.from(results[0].buffer)), `${what}: ${paths[i]} differs from ${paths[0]}`));
          for (let i = 0; i < m; i++) {
            for (let j = 0; j < n; j++) {
              let exact = 0;
              let magnitude = 0;
              for (let p = 0; p < k; p++) {
                const t = (transA ? A[p * m + i] : A[i * k + p]) * (transB ? B[j * k + p] : B[p * n + j]);
                exact += t;
                magnitude += Math.abs(t);
              }
              // A float32 dot product of k terms, in any order: |error| ≤ k · 2⁻²⁴ · Σ|terms|.
              assert.ok(Math.abs(results[0][i * n + j] - exact) <= k * 2 ** -24 * magnitude, `${what}: C[${i},${j}]`);
            }
          }
        }
      }
    }
  });

  it('applies ReLU, and the gate of the backward pass (C · 1[gate > 0])', () => {
    const rng = new Xoshiro128(4);
    const [m, k, n] = [19, 40, 35];
    const A = random(m * k, rng), B = random(k * n, rng), gate = random(m * n, rng);
    const plain = new Float32Array(m * n), relu = new Float32Array(m * n), gated = new Float32Array(m * n);
    matmul!(A, B, plain, m, k, n, false, false, false, null);
    matmul!(A, B, relu, m, k, n, false, false, true, null);
    matmul!(A, B, gated, m, k, n, false, false, false, gate);
    assert.ok(plain.some((v) => v < 0) && gate.some((v) => v <= 0));
    plain.forEach((v, i) => {
      assert.equal(relu[i], v > 0 ? v : 0);
      assert.equal(gated[i], v * +(gate[i] > 0)); // a multiply, as tfjs's mul(back, step(a)): −0 where v < 0
    });
  });

  it('rejects shapes that do not match the arrays, with a clear error', () => {
    const a = new Float32Array(6), b = new Float32Array(12), c = new Float32Array(8);
    assert.throws(() => matmul!(new Float32Array(5), b, c, 2, 3, 4, false, false, false, null), /A has 5 elements, m × k = 6/);
    assert.throws(() => matmul!(a, b, new Float32Array(7), 2, 3, 4, false, false, false, null), /C has 7 elements, m × n = 8/);
    assert.throws(() => matmul!(a, b, c, 2, 3, 4, false, false, false, new Float32Array(3)), /gate has 3 elements/);
    assert.throws(() => matmul!(a, new Float64Array(12) as never, c, 2, 3, 4, false, false, false, null), /B must be a Float32Array/);
    assert.throws(() => matmul!(a, b, c, 2.5, 3, 4, false, false, false, null), /m must be a non-negative integer/);
    assert.throws(() => addon!.setSimdLevel('sse' as never), /must be 'auto', 'avx512', 'avx2' or 'scalar'/);
  });
});

describe('training step: native products against the tfjs fallback', { skip: noGemm }, () => {
  const arch = presetArchitecture('lenet-300-100', 100);
  const shapes = layerShapes(arch);

  it('one step from the same scores and batch: the gradients agree to float rounding', () => {
    const base = generateBaseNetwork(arch, 1);
    const weff = initialScores(shapes, 7).map((S, l) => {
      const out = new Float32Array(S.length);
      typescriptScoreUpdate.maskBySign(S, base.layers[l], out);
      return out;
    });
    const weffT = weff.map((w, l) => transposed(w, shapes[l].in, shapes[l].out));
    const sampler = new BatchSampler(taskSource(permutedTask(3), mnist.train), 128, 5, NORM);
    sampler.next();
    const grads = [nativeStepProducts(addon!), tfjsStepProducts].map((products) => {
      const dLogits = new Float32Array(128 * arch.outputs);
      const g = products.run(sampler.x, sampler.xT, 128, shapes, weff, weffT, (logits) => {
        crossEntropyGradient(logits, sampler.labels, 128, arch.outputs, arch.classes, dLogits);
        return dLogits;
      });
      return g.map((a) => a.slice());
    });
    grads[0].forEach((native, l) => {
      const wasm = grads[1][l];
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < native.length; i++) {
        diff = Math.max(diff, Math.abs(native[i] - wasm[i]));
        norm = Math.max(norm, Math.abs(wasm[i]));
      }
      assert.ok(norm > 0, `layer ${l}: zero gradient`);
      // Measured: ≤ 2.1e-7 of the largest gradient (two summation orders, through the forward and the backward pass).
      assert.ok(diff <= 1e-5 * norm, `layer ${l}: max |native − wasm| = ${diff}, max |g| = ${norm}`);
    });
  });

  it('a whole task: the masks differ only in weights whose score ended next to 0', () => {
    const base = generateBaseNetwork(arch, 1);
    const source = taskSource(permutedTask(4), mnist.train);
    const opts = { steps: 60, batch: 128, lr: 1e-4, mask: 'gn' as const, seed: 9, normalization: NORM, keepScores: true };
    const native = trainSupermask(base, source, { ...opts, products: nativeStepProducts(addon!) });
    const wasm = trainSupermask(base, source, { ...opts, products: tfjsStepProducts });
    let differ = 0;
    let weight = 0;
    native.scores!.forEach((S, l) =>
      S.forEach((s, i) => {
        const t = wasm.scores![l][i];
        if (s >= 0 !== t >= 0) {
          differ++;
          // RMSProp moves a score by about lr per step: a sign that differs is a score within a few steps of 0.
          // RMSProp moves a score by about lr per step; a sign that differs belongs to a score that ended near 0
          // (measured: within 5% of the layer's initial score bound 1/√in).
          const bound = 1 / Math.sqrt(shapes[l].in);
          assert.ok(Math.abs(s) < bound / 10 && Math.abs(t) < bound / 10, `layer ${l} weight ${i}: scores ${s} and ${t}`);
        }
        weight++;
      }),
    );
    // Measured: 338 of the 275,200 weights (0.12%) after 60 steps; the trajectories part once a bit differs.
    assert.ok(differ / weight < 5e-3, `${differ} of ${weight} mask bits differ`);
  });

  it(`the same mask bits on every native path (${paths.join(', ')})`, () => {
    const small: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 20, classes: 10 };
    const base = generateBaseNetwork(small, 2);
    const source = taskSource(permutedTask(5), mnist.train);
    const masks = paths.map((p) =>
      withPath(p, () => trainSupermask(base, source, { steps: 30, batch: 64, lr: 1e-3, mask: 'gg', density: 0.4, seed: 3, normalization: NORM, products: nativeStepProducts(addon!) }).mask),
    );
    masks.forEach((m, i) => assert.deepEqual(m, masks[0], `${paths[i]} differs from ${paths[0]}`));
  });
});

describe('training on the full MNIST', () => {
  it('a short run (LeNet 300-100, 300 batches) is far above chance on the held-out test digits', () => {
    const arch = presetArchitecture('lenet-300-100', 10);
    const base = generateBaseNetwork(arch, 1);
    const products = selectStepProducts();
    const r = trainSupermask(base, taskSource({ kind: 'identity' }, mnist.train), {
      steps: 300, batch: 128, lr: 1e-3, mask: 'gn', seed: 1, normalization: NORM, products,
    });
    // The first 1,000 of the standard 10,000 test digits, through the float64 reference forward.
    let right = 0;
    const n = 1000;
    for (let e = 0; e < n; e++) {
      const x = Array.from(mnist.test.images.subarray(e * 784, (e + 1) * 784), (v) => (v - NORM.mean) / NORM.std);
      const logits = referenceLogits(base, [r.mask], [1], x);
      if (logits.indexOf(Math.max(...logits)) === mnist.test.labels[e]) right++;
    }
    assert.ok(right / n > 0.8, `${products.name}: held-out accuracy ${right / n}, chance is 0.1`);
  });
});
