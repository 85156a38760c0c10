import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Architecture, layerShapes, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { type Dataset, type DatasetSplits, loadDataset } from '../src/data/datasets.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { loadModel } from '../src/model/model-store.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { trainCommand } from '../src/cli/commands/train.ts';
import { BatchSampler, taskSource } from '../src/train/batches.ts';
import { crossEntropyGradient, keptPerLayer, topKThreshold } from '../src/core/masked-mlp.ts';
import { maskDensity } from '../src/core/mask-bank.ts';
import { runTraining } from '../src/train/run.ts';
import { type TrainConfig } from '../src/train/task-plan.ts';
import { initialScores, trainSupermask } from '../src/train/trainer.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { selectScoreUpdate } from '../src/platform/kernels.ts';
import { typescriptScoreUpdate } from '../src/core/score-update.ts';
import { referenceLogits } from './support/reference-mlp.ts';

const TINY: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 20, classes: 10 };
const NORM = { mean: 0.1307, std: 0.3081 };

/** First n examples of a split, in a fixed shuffled order (a small sample that still covers every digit). */
function subset(ds: Dataset, n: number, seed: number): Dataset {
  const rng = new Xoshiro128(seed);
  const idx = Array.from({ length: ds.count }, (_, i) => i);
  for (let j = idx.length - 1; j >= 1; j--) {
    const k = rng.nextInt(j + 1);
    [idx[j], idx[k]] = [idx[k], idx[j]];
  }
  const images = new Float32Array(n * 784);
  const labels = new Uint8Array(n);
  idx.slice(0, n).forEach((src, i) => {
    images.set(ds.images.subarray(src * 784, (src + 1) * 784), i * 784);
    labels[i] = ds.labels[src];
  });
  return { ...ds, name: `${ds.name}[${n}]`, images, labels, count: n };
}

function config(over: Partial<TrainConfig> = {}): TrainConfig {
  return { data: 'mnist', family: 'permuted', steps: 60, batch: 64, lr: 1e-3, mask: 'gn', density: 0.5, trainSeed: 3, transfer: false, backend: 'wasm', ...over };
}

/** Accuracy of f(x; W ⊙ M) on a dataset, by the float64 reference forward (no tfjs, no engine). */
function referenceAccuracy(arch: Architecture, seed: number, mask: Uint32Array, ds: Dataset, n: number): number {
  const base = generateBaseNetwork(arch, seed);
  let right = 0;
  for (let e = 0; e < n; e++) {
    const x = Array.from(ds.images.subarray(e * 784, (e + 1) * 784), (v) => (v - NORM.mean) / NORM.std);
    const logits = referenceLogits(base, [mask], [1], x).slice(0, arch.classes);
    if (logits.indexOf(Math.max(...logits)) === ds.labels[e]) right++;
  }
  return right / n;
}

let mnist: DatasetSplits;
let train: Dataset;
let heldOut: Dataset;
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'supsup-train-'));
  dirs.push(d);
  return d;
};

before(async () => {
  await selectBackend('wasm');
  mnist = loadDataset('mnist');
  train = subset(mnist.train, 3000, 1);
  heldOut = subset(mnist.test, 300, 2);
});
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('supermask training', () => {
  it('lowers the loss and finds a mask far above chance on held-out data', () => {
    const base = generateBaseNetwork(TINY, 5);
    const r = trainSupermask(base, taskSource({ kind: 'identity' }, train), {
      steps: 300, batch: 64, lr: 1e-3, mask: 'gn', seed: 11, normalization: NORM,
    });
    assert.ok(r.finalLoss < 0.6 * r.firstLoss, `loss ${r.firstLoss} → ${r.finalLoss}`);
    assert.ok(r.density > 0.4 && r.density < 0.6, `a GN mask keeps about half the weights, got ${r.density}`);
    const acc = referenceAccuracy(TINY, 5, r.mask, heldOut, 300);
    assert.ok(acc > 0.6, `held-out accuracy ${acc} should be far above chance (0.1)`);
  });

  it('is deterministic given the seed, and the seed matters', () => {
    const base = generateBaseNetwork(TINY, 5);
    const src = taskSource(permutedTask(1), train);
    const opts = { steps: 20, batch: 32, lr: 1e-3, mask: 'gn' as const, seed: 4, normalization: NORM };
    const a = trainSupermask(base, src, opts).mask;
    const b = trainSupermask(base, src, opts).mask;
    const c = trainSupermask(base, src, { ...opts, seed: 5 }).mask;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  const addon = loadNativeAddon().addon;
  it('native and TypeScript score updates give the same bits (AVX2 and scalar), so a mask does not depend on which ran', { skip: addon ? false : 'native addon not built' }, () => {
    const rng = new Xoshiro128(9);
    const n = 200_003; // many values, so a rare rounding difference would show; not a multiple of the vector widths
    const rand = (scale: number) => Float32Array.from({ length: n }, () => (rng.nextFloat() - 0.5) * scale);
    const S0 = rand(1e-2), V0 = rand(1e-6).map(Math.abs), G = rand(1), W = Float32Array.from({ length: n }, (_, i) => (i % 3 ? 0.05 : -0.05));
    // Edge values: zero gradient and state, ±0 and tiny scores (zero gradients keep them), huge and tiny gradients.
    G[0] = 0; V0[0] = 0; G[4] = 1e30; G[5] = 1e-30; G[6] = -3e4;
    [-0, 1e-45, -1e-45].forEach((v, i) => ((S0[i + 1] = v), (G[i + 1] = 0)));
    try {
      for (const path of ['avx2', 'scalar'] as const) {
        if (path === 'avx2' && addon!.setCpuPath('auto') !== 'avx2') continue;
        addon!.setCpuPath(path);
        const native = selectScoreUpdate();
        const [a, b] = [typescriptScoreUpdate, native].map((u) => {
          const S = S0.slice(), V = V0.slice(), out = new Float32Array(n);
          for (let k = 0; k < 4; k++) u.rmspropStep(S, V, G, W, 1e-4, 0.99, 1e-8);
          u.maskBySign(S, W, out);
          return [S, V, out].map((x) => Buffer.from(x.buffer));
        });
        ['S', 'V', 'W ⊙ mask'].forEach((what, i) => assert.ok(a[i].equals(b[i]), `${path}: ${what} differs`));
      }
      addon!.setCpuPath('auto');
      const base = generateBaseNetwork(TINY, 5);
      const src = taskSource(permutedTask(2), train);
      for (const mask of ['gn', 'gg'] as const) {
        const opts = { steps: 25, batch: 32, lr: 1e-3, mask, seed: 4, normalization: NORM };
        const withTs = trainSupermask(base, src, { ...opts, update: typescriptScoreUpdate }).mask;
        const withNative = trainSupermask(base, src, { ...opts, update: selectScoreUpdate() }).mask;
        assert.deepEqual(withNative, withTs, `${mask}: masks differ`);
      }
    } finally {
      addon!.setCpuPath('auto');
    }
  });

  it('GG masks keep the requested fraction of every layer', () => {
    const base = generateBaseNetwork(TINY, 5);
    const r = trainSupermask(base, taskSource({ kind: 'identity' }, train), {
      steps: 30, batch: 32, lr: 1e-3, mask: 'gg', density: 0.3, seed: 1, normalization: NORM,
    });
    let offset = 0;
    for (const s of layerShapes(TINY)) {
      let kept = 0;
      for (let w = offset; w < offset + s.in * s.out; w++) kept += (r.mask[w >>> 5] >>> (w & 31)) & 1;
      assert.equal(kept, keptPerLayer(s.in * s.out, 0.3));
      offset += s.in * s.out;
    }
    assert.ok(Math.abs(maskDensity(r.mask, weightCount(TINY)) - 0.3) < 0.001);
  });

  it('initialises scores uniformly in ±1/sqrt(fan_in)', () => {
    const scores = initialScores(layerShapes(TINY), 9);
    layerShapes(TINY).forEach((s, l) => {
      const bound = 1 / Math.sqrt(s.in);
      const a = scores[l];
      assert.ok(a.every((v) => Math.abs(v) <= bound));
      const mean = a.reduce((x, y) => x + y, 0) / a.length;
      assert.ok(Math.abs(mean) < bound * 0.05);
      assert.ok(Math.max(...a) > bound * 0.99 && Math.min(...a) < -bound * 0.99);
    });
  });

  it('topKThreshold matches sorting', () => {
    const rng = new Xoshiro128(3);
    const v = Float32Array.from({ length: 1001 }, () => rng.nextFloat() * 2 - 1);
    const sorted = Array.from(v, Math.abs).sort((a, b) => b - a);
    for (const k of [1, 2, 500, 1000, 1001]) assert.equal(topKThreshold(v, k, new Float32Array(v.length)), Math.fround(sorted[k - 1]));
  });

  it('cross-entropy gradient is softmax minus one-hot over all outputs, averaged', () => {
    const logits = Float32Array.from([1, 2, 0.5, -1, 0, 3]);
    const out = new Float32Array(6);
    const { loss, correct } = crossEntropyGradient(logits, Int32Array.from([1, 0]), 2, 3, 2, out);
    const row = (a: number[], y: number) => {
      const z = Math.log(a.reduce((s, x) => s + Math.exp(x), 0));
      return { l: z - a[y], g: a.map((x, j) => (Math.exp(x - z) - (j === y ? 1 : 0)) / 2) };
    };
    const r0 = row([1, 2, 0.5], 1);
    const r1 = row([-1, 0, 3], 0);
    assert.ok(Math.abs(loss - (r0.l + r1.l) / 2) < 1e-9);
    [...r0.g, ...r1.g].forEach((g, i) => assert.ok(Math.abs(out[i] - g) < 1e-6));
    assert.equal(correct, 1); // row 0 argmax over the 2 classes is 1 (right); row 1 is 1, label 0 (wrong)
  });

  it('batches apply the permutation and the normalisation, and xT is the transpose', () => {
    const t = permutedTask(2);
    if (t.kind !== 'permutation') throw new Error('expected a permutation');
    const src = taskSource(t, train);
    const s = new BatchSampler(src, 4, 1, NORM);
    s.next();
    for (let b = 0; b < 4; b++) {
      const label = s.labels[b];
      // Find an example with this row's pixels: row i of x is image[perm[i]] normalised.
      let found = false;
      for (let e = 0; e < train.count && !found; e++) {
        if (train.labels[e] !== label) continue;
        found = t.permutation.every((p, i) => Math.abs(s.x[b * 784 + i] - (train.images[e * 784 + p] - NORM.mean) / NORM.std) < 1e-6);
      }
      assert.ok(found, `row ${b} is a permuted, normalised training image`);
      for (let i = 0; i < 784; i++) assert.equal(s.xT[i * 4 + b], s.x[b * 784 + i]);
    }
  });
});

describe('training runs', () => {
  it('appends every task with its transform, and resumes after a crash without duplicates or losses', async () => {
    const dir = path.join(tempDir(), 'model');
    const create = { architecture: TINY, seed: 7, normalization: NORM };
    const data = { train, test: heldOut };
    let appended = 0;
    await assert.rejects(
      runTraining({
        modelDir: dir, create, config: config(), tasks: 3, workers: 1, data,
        afterAppend: () => {
          if (++appended === 1) throw new Error('simulated crash after the first append');
        },
      }),
      /simulated crash/,
    );
    const first = await loadModel(dir);
    assert.deepEqual(first.manifest.tasks.map((t) => t.id), ['permuted-0']);
    const mask0 = first.masks.get('permuted-0')!;

    // A second crash, this time half-way through writing task 1's record: that task is lost, nothing else.
    await assert.rejects(
      runTraining({
        modelDir: dir, config: config(), tasks: 3, workers: 1, data,
        faults: (step) => {
          if (step === 'append:write-record-payload') throw new Error('simulated crash inside an append');
        },
      }),
      /inside an append/,
    );
    assert.deepEqual((await loadModel(dir)).manifest.tasks.map((t) => t.id), ['permuted-0']);

    const summary = await runTraining({ modelDir: dir, config: config(), tasks: 3, workers: 1, data });
    assert.deepEqual(summary.trained, ['permuted-1', 'permuted-2']);
    assert.equal(summary.skipped, 1);
    const done = await loadModel(dir);
    assert.deepEqual(done.manifest.tasks.map((t) => t.id), ['permuted-0', 'permuted-1', 'permuted-2']);
    assert.deepEqual(done.masks.get('permuted-0'), mask0, 'the first task is untouched');
    done.manifest.tasks.forEach((t, i) => {
      assert.deepEqual(t.transform, permutedTask(i), 'the manifest holds the permutation itself');
      assert.match(t.description ?? '', /GN mask/);
    });
    // Same seeds, same masks: a task trained in the resumed run equals a fresh run's.
    const fresh = path.join(tempDir(), 'fresh');
    await runTraining({ modelDir: fresh, create, config: config(), tasks: 2, workers: 1, data });
    const f = await loadModel(fresh);
    assert.deepEqual(f.masks.get('permuted-1'), done.masks.get('permuted-1'));

    const again = await runTraining({ modelDir: dir, config: config(), tasks: 3, workers: 1, data });
    assert.deepEqual(again.trained, [], 'nothing left to do');
    const log = readFileSync(path.join(dir, 'training-log.jsonl'), 'utf8').trim().split('\n');
    assert.equal(log.length, 3);
  });

  it('child-process workers give the same masks as one process', async () => {
    const create = { architecture: TINY, seed: 7, normalization: NORM };
    const cfg = config({ steps: 15 });
    const one = path.join(tempDir(), 'one');
    const two = path.join(tempDir(), 'two');
    await runTraining({ modelDir: one, create, config: cfg, tasks: 3, workers: 1, data: mnist });
    const s = await runTraining({ modelDir: two, create, config: cfg, tasks: 3, workers: 2 });
    assert.equal(s.trained.length, 3);
    const a = await loadModel(one);
    const b = await loadModel(two);
    for (const id of ['permuted-0', 'permuted-1', 'permuted-2']) assert.deepEqual(b.masks.get(id), a.masks.get(id), id);
  });

  it('transfer starts each task from the mean of the earlier scores, kept beside the model', async () => {
    const dir = path.join(tempDir(), 'transfer');
    const create = { architecture: TINY, seed: 7, normalization: NORM };
    const data = { train, test: heldOut };
    await runTraining({ modelDir: dir, create, config: config({ transfer: true, steps: 20 }), tasks: 2, workers: 1, data });
    const buf = readFileSync(path.join(dir, 'transfer-scores.bin'));
    assert.equal(buf.length, weightCount(TINY) * 4 + 8);
    assert.equal(buf.readDoubleLE(buf.length - 8), 2, 'two tasks summed');
    // Resuming continues from the stored sum.
    await runTraining({ modelDir: dir, config: config({ transfer: true, steps: 20 }), tasks: 3, workers: 1, data });
    assert.equal(readFileSync(path.join(dir, 'transfer-scores.bin')).readDoubleLE(buf.length - 8), 3);
    const plain = path.join(tempDir(), 'plain');
    await runTraining({ modelDir: plain, create, config: config({ steps: 20 }), tasks: 2, workers: 1, data });
    const [a, b] = [await loadModel(dir), await loadModel(plain)];
    assert.deepEqual(a.masks.get('permuted-0'), b.masks.get('permuted-0'), 'the first task has nothing to transfer from');
    assert.notDeepEqual(a.masks.get('permuted-1'), b.masks.get('permuted-1'));
  });

  it('refuses bad flags with a clear message', async () => {
    await assert.rejects(trainCommand(['--tasks', '3']), /--model DIR is required/);
    await assert.rejects(trainCommand(['--model', tempDir(), '--tasks', 'x']), /--tasks: must be a whole number/);
    await assert.rejects(trainCommand(['--model', tempDir(), '--tasks', '2', '--mask', 'xx']), /--mask: must be one of gn, gg/);
    await assert.rejects(trainCommand(['--model', tempDir(), '--tasks', '2', '--bogus']), /Unknown option '--bogus'/);
    await assert.rejects(trainCommand(['--model', tempDir(), '--tasks', '2', '--lr=-1']), /--lr: must be a decimal number greater than 0/);
    await assert.rejects(
      trainCommand(['--model', tempDir(), '--tasks', '2', '--workers', '2', '--transfer']),
      /--workers 1 with --transfer/,
    );
  });
});
