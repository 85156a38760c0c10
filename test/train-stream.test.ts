import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Architecture } from '../src/core/architecture.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { type DatasetSplits, loadDataset } from '../src/data/datasets.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { appendTask, createModel, loadModel } from '../src/model/model-store.ts';
import { randomMask } from '../src/model/random-model.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { type StreamEvent, runStream } from '../src/train/stream.ts';
import { type TrainConfig } from '../src/train/task-plan.ts';

const TINY: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 20, classes: 10 };
const create = { architecture: TINY, seed: 7, normalization: { mean: 0.1307, std: 0.3081 } };
const config = (steps: number): TrainConfig => ({
  data: 'mnist', family: 'permuted', steps, batch: 64, lr: 1e-3, mask: 'gn', density: 0.5, trainSeed: 2, transfer: false, backend: 'wasm',
});
let root: string;
let data: DatasetSplits;
before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'supsup-stream-'));
  data = loadDataset('mnist');
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('training without task ids (NN)', () => {
  it('allocates one mask per task, skips batches of learned tasks, and resumes by recognising them', async () => {
    const dir = path.join(root, 'long-tasks');
    // Each task offers more batches than a mask trains on: the rest must be recognised, not re-learned.
    const s = await runStream({ modelDir: dir, create, config: config(60), tasks: 3, batchesPerTask: 80, data, kernels: typescriptKernels });
    assert.deepEqual(s.allocated.map((a) => a.trueTask), [0, 1, 2]);
    assert.deepEqual(s.allocated.map((a) => a.allocatedAt), [0, 80, 160]);
    assert.equal(s.skipped, 3 * 20);
    const m = await loadModel(dir);
    assert.deepEqual(m.manifest.tasks.map((t) => t.id), ['nn-0', 'nn-1', 'nn-2']);
    m.manifest.tasks.forEach((t, i) => assert.deepEqual(t.transform, permutedTask(i)));
    const again = await runStream({ modelDir: dir, config: config(60), tasks: 3, batchesPerTask: 80, data, kernels: typescriptKernels });
    assert.equal(again.allocated.length, 0);
    assert.equal(again.skipped, 240);
  });

  it('does not skip a new task that a stored mask wins the batch test on but cannot classify', async () => {
    // A dense untrained mask stands in for what lr 3e-4 masks did on unseen permutations: it wins the one-shot
    // test on any data and passes k · max ν ≥ 1 + ε, yet classifies the batch at chance.
    const dir = path.join(root, 'impostor');
    await createModel(dir, create);
    await appendTask(dir, { id: 'impostor', name: 'dense untrained mask', transform: permutedTask(0) }, randomMask(TINY, 0.95, new Xoshiro128(3)));
    const s = await runStream({ modelDir: dir, config: config(30), tasks: 1, batchesPerTask: 40, data, kernels: typescriptKernels });
    assert.deepEqual(s.allocated.map((a) => a.allocatedAt), [0]);
    assert.equal(s.skipped, 10);
  });

  it('notices a task boundary while a mask is still training', async () => {
    const events: StreamEvent[] = [];
    const s = await runStream({
      modelDir: path.join(root, 'short-tasks'), create, config: config(200), tasks: 3, batchesPerTask: 70, data,
      kernels: typescriptKernels, minSteps: 30, checkEvery: 5, onEvent: (e) => events.push(e),
    });
    assert.deepEqual(s.allocated.map((a) => a.trueTask), [0, 1, 2]);
    const stores = events.filter((e) => e.type === 'store');
    assert.deepEqual(stores.map((e) => e.type === 'store' && e.why), ['data changed', 'data changed', 'stream ended']);
    // Detected within one check interval of the boundary.
    assert.ok(s.allocated[1].allocatedAt >= 70 && s.allocated[1].allocatedAt < 75, JSON.stringify(s.allocated));
  });
});
