// The NN scenario (`supsup train --no-task-ids`): training data arrives as one stream of batches, task after
// task, with no boundary given to the learner. The learner trains one mask at a time and decides by itself,
// with the engine's task inference, when the data has changed:
//
// - While a mask is being trained, every `checkEvery` batches (once it has `minSteps` of training) the
//   current batch is classified against the stored masks plus the one in training (one-shot H over the whole
//   batch). If no mask fits (k · max ν < 1 + ε, the paper's test) or a stored mask wins, the mask in
//   training is stored and the batch is handled as below.
// - A mask is also stored when it reaches `steps` batches of training.
// - With no mask in training, each batch is classified against the stored masks: unknown → a new mask is
//   allocated and trained on it; known, and the chosen mask classifies the labelled batch well → the batch
//   belongs to a learned task and is skipped (stored masks are never changed).
//
// The unknown test needs contrast between at least two masks; a fixed random mask (the decoy, never
// stored) always takes part, so even the first stored mask can be told apart from new data. A batch the
// decoy wins is unknown.
//
// Each stored mask is appended to the model at once (durable); its manifest entry records, as ground truth
// for evaluation, the transform of the stream's task during which it was allocated. A rerun replays the
// stream: batches of tasks already learned are recognised and skipped, so it resumes.
import { generateBaseNetwork } from '../core/base-network.ts';
import { DEFAULT_MAX_BATCH } from '../contract/classify.ts';
import type { ModelSpec } from '../contract/model.ts';
import { Engine } from '../core/engine.ts';
import { type MaskKernels } from '../core/kernels/mask-kernels.ts';
import { selectKernels } from '../platform/kernels.ts';
import { Xoshiro128 } from '../core/prng.ts';
import { type DatasetSplits, loadDataset } from '../data/datasets.ts';
import { appendTask, appendToSideFile, createModel, hasModel, loadModel } from '../model/model-store.ts';
import { randomMask } from '../model/random-model.ts';
import { selectBackend } from '../platform/backend.ts';
import { BatchSampler, taskSource } from './batches.ts';
import { deriveSeed } from '../core/prng.ts';
import { TRAINING_LOG } from './run.ts';
import { type TrainConfig, taskName, taskTransform } from './task-plan.ts';
import { selectStepProducts } from './step-products.ts';
import { SupermaskOptimizer } from './trainer.ts';

export interface StreamOptions {
  modelDir: string;
  create?: ModelSpec;
  /** steps: the most batches one mask trains on. */
  config: TrainConfig;
  /** True tasks in the stream (tasks 0..tasks−1 of the family, in order). */
  tasks: number;
  /** Batches each true task contributes to the stream (default config.steps). */
  batchesPerTask?: number;
  /** Training batches before a mask in training is first checked (default steps / 5). */
  minSteps?: number;
  /** Batches between checks of the mask in training (default 10). */
  checkEvery?: number;
  /** The unknown-task threshold ε (default: the paper's, DEFAULT_EPSILON). */
  epsilon?: number;
  kernels?: MaskKernels;
  data?: DatasetSplits;
  onEvent?: (e: StreamEvent) => void;
}

export type StreamEvent =
  | { type: 'allocate'; id: string; batch: number; trueTask: number }
  | { type: 'store'; id: string; batch: number; trueTask: number; steps: number; why: 'full' | 'data changed' | 'stream ended' };

export interface StreamAllocation {
  id: string;
  /** The stream's task when the mask was allocated (ground truth, unknown to the learner). */
  trueTask: number;
  allocatedAt: number;
  steps: number;
}

export interface StreamSummary {
  batches: number;
  /** Batches recognised as belonging to an already stored mask and not trained on. */
  skipped: number;
  allocated: StreamAllocation[];
  /** Masks in the model at the end. */
  masks: number;
  seconds: number;
}

const DECOY = 'decoy';
const ACTIVE = 'active';

export async function runStream(o: StreamOptions): Promise<StreamSummary> {
  const { config } = o;
  const started = performance.now();
  await selectBackend(config.backend);
  if (!hasModel(o.modelDir)) {
    if (!o.create) throw new Error(`${o.modelDir} holds no model: give --arch, --outputs and --seed to create one`);
    await createModel(o.modelDir, o.create);
  }
  const { manifest, masks } = await loadModel(o.modelDir);
  const arch = manifest.architecture;
  const base = generateBaseNetwork(arch, manifest.seed);
  const data = o.data ?? loadDataset(config.data, config.dataDir);
  const batchesPerTask = o.batchesPerTask ?? config.steps;
  const minSteps = o.minSteps ?? Math.max(1, Math.round(config.steps / 5));
  const checkEvery = o.checkEvery ?? 10;
  // Inputs reach the engine already normalised by the sampler.
  const engine = new Engine({
    architecture: arch,
    seed: manifest.seed,
    normalization: { mean: 0, std: 1 },
    kernels: o.kernels ?? selectKernels('auto').kernels,
    expectedTasks: manifest.tasks.length + 2,
    maxBatch: Math.max(DEFAULT_MAX_BATCH, config.batch),
    epsilon: o.epsilon,
  });
  engine.addTask(DECOY, randomMask(arch, 0.5, new Xoshiro128(deriveSeed(manifest.seed, 0, 5))));
  for (const t of manifest.tasks) engine.addTask(t.id, masks.get(t.id)!);
  let stored = manifest.tasks.length;

  const infer = (x: Float32Array, batch: number) =>
    engine.classify(engine.validate({ inputs: x, batch, inference: { method: 'one-shot', objective: 'entropy', decideFrom: 'batch' } }))[0]
      .task;

  // A stored mask that the batch test picks must also classify the labelled batch well before its task counts as
  // learned: the NN scenario withholds task ids, not labels. Masks trained at lr 3e-4 won the one-shot test (and
  // passed k · max ν ≥ 1 + ε) on permutations they never saw, so a new task was skipped as learned. The bar is
  // halfway between chance and perfect: a mask on its own task scores far above it, on another task near chance.
  const knownAccuracy = (1 + 1 / arch.classes) / 2;
  const accuracyOf = (id: string, x: Float32Array, labels: Int32Array): number => {
    const predictions = engine.classify(engine.validate({ inputs: x, batch: labels.length, task: id }));
    let right = 0;
    predictions.forEach((p, i) => (right += p.label === labels[i] ? 1 : 0));
    return right / labels.length;
  };

  let active: { opt: SupermaskOptimizer; id: string; trueTask: number; allocatedAt: number; steps: number } | null = null;
  const allocated: StreamAllocation[] = [];
  const store = async (batch: number, why: 'full' | 'data changed' | 'stream ended') => {
    const a = active!;
    active = null;
    if (engine.task(ACTIVE)) engine.removeTask(ACTIVE);
    const mask = a.opt.mask();
    await appendTask(
      o.modelDir,
      {
        id: a.id,
        name: `NN mask ${a.id.slice(3)}`,
        description:
          `trained by supsup train --no-task-ids: allocated at stream batch ${a.allocatedAt}, trained on ${a.steps} batches; ` +
          `the stream was then in ${taskName(config, a.trueTask)} (ground truth, not seen by the learner)`,
        transform: taskTransform(config.family, a.trueTask),
      },
      mask,
    );
    engine.addTask(a.id, mask);
    stored++;
    const record = { id: a.id, trueTask: a.trueTask, allocatedAt: a.allocatedAt, steps: a.steps, why, scenario: 'no-task-ids', config };
    await appendToSideFile(o.modelDir, TRAINING_LOG, JSON.stringify(record) + '\n');
    allocated.push({ id: a.id, trueTask: a.trueTask, allocatedAt: a.allocatedAt, steps: a.steps });
    o.onEvent?.({ type: 'store', id: a.id, batch, trueTask: a.trueTask, steps: a.steps, why });
  };

  let batchIndex = 0;
  let skipped = 0;
  for (let t = 0; t < o.tasks; t++) {
    const sampler = new BatchSampler(taskSource(taskTransform(config.family, t), data.train), config.batch, deriveSeed(config.trainSeed, t, 3), manifest.normalization);
    for (let b = 0; b < batchesPerTask; b++, batchIndex++) {
      sampler.next();
      if (active !== null && active.steps >= minSteps && active.steps % checkEvery === 0) {
        if (engine.task(ACTIVE)) engine.removeTask(ACTIVE);
        engine.addTask(ACTIVE, active.opt.mask());
        const d = infer(sampler.x, config.batch);
        if (d.unknown || d.id !== ACTIVE) await store(batchIndex, 'data changed');
      }
      if (active === null) {
        const d = infer(sampler.x, config.batch);
        if (!d.unknown && d.id !== DECOY && accuracyOf(d.id, sampler.x, sampler.labels) >= knownAccuracy) {
          skipped++;
          continue;
        }
        const id = `nn-${stored}`;
        active = {
          opt: new SupermaskOptimizer(base, {
            lr: config.lr, mask: config.mask, density: config.density, seed: deriveSeed(config.trainSeed, stored, 4), products: selectStepProducts(config.matmul),
          }),
          id,
          trueTask: t,
          allocatedAt: batchIndex,
          steps: 0,
        };
        o.onEvent?.({ type: 'allocate', id, batch: batchIndex, trueTask: t });
      }
      active.opt.step(sampler.x, sampler.xT, sampler.labels);
      active.steps++;
      if (active.steps >= config.steps) await store(batchIndex, 'full');
    }
  }
  if (active !== null) await store(batchIndex, 'stream ended');
  engine.dispose();
  return { batches: batchIndex, skipped, allocated, masks: stored, seconds: (performance.now() - started) / 1000 };
}
