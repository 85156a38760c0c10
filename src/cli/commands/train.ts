// `supsup train`: one supermask per task, appended to a model directory as each task finishes.
// See `supsup train --help`.
import { hasModel } from '../../model/model-store.ts';
import { PRESET_NAMES, presetArchitecture } from '../../core/architecture.ts';
import { DATASET_NAMES, loadDataset } from '../../data/datasets.ts';
import { TASK_FAMILIES } from '../../data/transforms.ts';
import { MNIST_NORMALIZATION, type ModelSpec, type Normalization } from '../../contract/model.ts';
import { pixelStatistics } from '../../train/batches.ts';
import { MASK_STYLES } from '../../core/masked-mlp.ts';
import { createReporter } from '../../train/progress.ts';
import { runTraining } from '../../train/run.ts';
import { MATMUL_CHOICES, type MatmulChoice, selectStepProducts } from '../../train/step-products.ts';
import { runStream } from '../../train/stream.ts';
import { type TrainConfig } from '../../train/task-plan.ts';
import { ConfigError, HELP_SWITCH, parseSettings, QUIET_SWITCH, type Setting, usage } from '../../platform/settings.ts';

const BACKENDS = ['wasm', 'cpu'] as const;
const SEED_MAX = 0xffffffff;

const SETTINGS = [
  { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', required: true, help: 'the model directory: created when it holds no model yet, else appended to' },
  { key: 'tasks', flag: 'tasks', kind: 'count', arg: 'N', required: true, min: 1, help: 'train tasks 0..N-1 of the family' },
  { group: 'model (used only when DIR holds no model yet; it is then created)', key: 'arch', flag: 'arch', kind: 'string', arg: 'NAME', choices: PRESET_NAMES, default: 'lenet-300-100', help: PRESET_NAMES.join(' | ') },
  { key: 'outputs', flag: 'outputs', kind: 'count', arg: 'S', min: 1, default: '100', help: 'output neurons s, real classes plus superfluous ones' },
  { key: 'classes', flag: 'classes', kind: 'count', arg: 'L', min: 1, default: '10', help: 'real classes l' },
  { key: 'seed', flag: 'seed', kind: 'count', arg: 'N', min: 0, max: SEED_MAX, default: '1', help: 'base network seed' },
  { group: 'data', key: 'data', flag: 'data', kind: 'string', arg: 'NAME', choices: DATASET_NAMES, default: 'mnist', help: DATASET_NAMES.join(' | ') },
  { key: 'dataDir', flag: 'data-dir', kind: 'string', arg: 'DIR', help: 'read the four IDX files from DIR instead of the built-in source' },
  { key: 'family', flag: 'family', kind: 'string', arg: 'NAME', choices: TASK_FAMILIES, default: 'permuted', help: TASK_FAMILIES.join(' | ') },
  { group: "training (defaults: the paper's PermutedMNIST settings)", key: 'steps', flag: 'steps', kind: 'count', arg: 'N', min: 1, default: '1000', help: 'batches per task' },
  { key: 'batch', flag: 'batch', kind: 'count', arg: 'N', min: 1, default: '128', help: 'examples per batch' },
  { key: 'lr', flag: 'lr', kind: 'number', arg: 'X', min: 0, aboveMin: true, default: '1e-4', help: 'RMSProp learning rate (alpha 0.99, eps 1e-8)' },
  { key: 'mask', flag: 'mask', kind: 'string', arg: 'gn|gg', choices: MASK_STYLES, default: 'gn', help: 'gn: keep S >= 0; gg: keep the top --density of |S| per layer' },
  { key: 'density', flag: 'density', kind: 'number', arg: 'X', min: 0, aboveMin: true, max: 1, default: '0.5', help: 'kept fraction for gg masks' },
  { key: 'trainSeed', flag: 'train-seed', kind: 'count', arg: 'N', min: 0, max: SEED_MAX, help: "seed of score initialisation and batch order (default: the model's seed)" },
  { key: 'transfer', flag: 'transfer', kind: 'switch', help: "start each task from the mean of the earlier tasks' scores (needs --workers 1)" },
  {
    group: 'without task ids (the NN scenario)',
    key: 'noTaskIds',
    flag: 'no-task-ids',
    kind: 'switch',
    help:
      'one stream of batches, tasks 0..N-1 one after another with no boundaries given; a new mask is allocated when no stored ' +
      'mask fits the data (k · max ν < 1 + ε), stored after --steps batches or when the data changes; batches of learned tasks are skipped',
  },
  { key: 'streamBatches', flag: 'stream-batches', kind: 'count', arg: 'N', min: 1, help: 'batches each task contributes to the stream (default: --steps)' },
  { group: 'run', key: 'workers', flag: 'workers', kind: 'count', arg: 'N', min: 1, max: 64, default: '1', help: 'train N tasks at a time in child processes' },
  { key: 'backend', flag: 'backend', kind: 'string', arg: 'NAME', choices: BACKENDS, default: 'wasm', help: BACKENDS.join(' | ') },
  {
    key: 'matmul',
    flag: 'matmul',
    kind: 'string',
    arg: 'NAME',
    choices: MATMUL_CHOICES,
    help: "native | tfjs: the training step's matrix products, the addon's GEMM or tfjs on --backend (default native when the addon is built for this CPU; masks agree to float rounding)",
  },
  QUIET_SWITCH,
  HELP_SWITCH,
] as const satisfies readonly Setting[];

const USAGE = usage(
  `usage: supsup train --model DIR --tasks N [options]

Trains tasks 0..N-1 of a task family, one supermask each, and appends each finished task to the model.
Tasks already in the model are skipped, so an interrupted run resumes when run again.`,
  SETTINGS,
);

export async function trainCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const { values: v, given } = parseSettings(SETTINGS, argv, USAGE);
  const modelDir = v.model;
  const tasks = v.tasks;
  const exists = hasModel(modelDir);
  const config: TrainConfig = {
    data: v.data,
    dataDir: v.dataDir,
    family: v.family,
    steps: v.steps,
    batch: v.batch,
    lr: v.lr,
    mask: v.mask,
    density: v.density,
    trainSeed: v.trainSeed ?? v.seed,
    transfer: v.transfer,
    backend: v.backend,
    matmul: v.matmul ?? defaultMatmul(),
  };
  let create: ModelSpec | undefined;
  if (!exists) {
    if (v.classes > v.outputs) throw new ConfigError(`--classes (${v.classes}) must not exceed --outputs (${v.outputs})`);
    create = { architecture: presetArchitecture(v.arch, v.outputs, v.classes), seed: v.seed, normalization: normalizationFor(config) };
  } else {
    for (const key of ['arch', 'outputs', 'classes'] as const) {
      if (given.has(key)) console.error(`note: ${modelDir} already holds a model; --${key} is ignored`);
    }
  }
  const workers = v.workers;
  if (v.noTaskIds) {
    if (workers > 1 || config.transfer) throw new ConfigError('--no-task-ids trains one stream in order: it takes neither --workers > 1 nor --transfer');
    const batchesPerTask = v.streamBatches ?? config.steps;
    const log = (line: string) => {
      if (!v.quiet) process.stderr.write(`${line}\n`);
    };
    const s = await runStream({
      modelDir,
      create,
      config,
      tasks,
      batchesPerTask,
      onEvent: (e) =>
        log(
          e.type === 'allocate'
            ? `batch ${e.batch}: no stored mask fits; allocated ${e.id}`
            : `batch ${e.batch}: stored ${e.id} after ${e.steps} batches (${e.why}); the stream was in task ${e.trueTask}`,
        ),
    });
    log(
      `stream of ${s.batches} batches from ${tasks} task(s): ${s.allocated.length} mask(s) allocated, ${s.skipped} batches recognised ` +
        `as learned tasks and skipped; the model has ${s.masks} task(s) (${s.seconds.toFixed(0)} s)`,
    );
    return;
  }
  if (v.streamBatches !== undefined) throw new ConfigError('--stream-batches goes with --no-task-ids');
  await runTraining({ modelDir, create, config, tasks, workers, reporter: createReporter(process.stderr, v.quiet) });
}

/**
 * A new model's input normalisation: the paper's MNIST constants for the built-in MNIST, otherwise the mean
 * and std of every pixel of the training split (the engine applies one {mean, std} per model).
 */
function normalizationFor(config: TrainConfig): Normalization {
  if (config.data === 'mnist' && config.dataDir === undefined) return MNIST_NORMALIZATION;
  return pixelStatistics(loadDataset(config.data, config.dataDir).train);
}

/** What the default products are here, recorded in the run's config so the training log says which ran. */
function defaultMatmul(): MatmulChoice {
  return selectStepProducts().name.startsWith('native') ? 'native' : 'tfjs';
}
