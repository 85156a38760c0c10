// `supsup train`: one supermask per task, appended to a model directory as each task finishes.
// See `supsup train --help`.
import { hasModel } from '../../model/model-store.ts';
import { PRESETS, type PresetName, presetArchitecture } from '../../core/architecture.ts';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../../data/datasets.ts';
import { TASK_FAMILIES, type TaskFamily } from '../../data/transforms.ts';
import { MNIST_NORMALIZATION, type ModelSpec, type Normalization } from '../../contract/model.ts';
import { pixelStatistics } from '../../train/batches.ts';
import { MASK_STYLES, type MaskStyle } from '../../core/masked-mlp.ts';
import { createReporter } from '../../train/progress.ts';
import { runTraining } from '../../train/run.ts';
import { MATMUL_CHOICES, type MatmulChoice, selectStepProducts } from '../../train/step-products.ts';
import { runStream } from '../../train/stream.ts';
import { type TrainConfig } from '../../train/task-plan.ts';
import { COMMON_SWITCHES, int, number, oneOf, parseFlags, required, stringFlags } from '../flags.ts';

const USAGE = `usage: supsup train --model DIR --tasks N [options]

Trains tasks 0..N-1 of a task family, one supermask each, and appends each finished task to the model.
Tasks already in the model are skipped, so an interrupted run resumes when run again.

model (used only when DIR holds no model yet; it is then created):
  --arch NAME        ${Object.keys(PRESETS).join(' | ')} (default lenet-300-100)
  --outputs S        output neurons s, real classes plus superfluous ones (default 100)
  --classes L        real classes l (default 10)
  --seed N           base network seed (default 1)
data:
  --data NAME        ${DATASET_NAMES.join(' | ')} (default mnist)
  --data-dir DIR     read the four IDX files from DIR instead of the built-in source
  --family NAME      ${TASK_FAMILIES.join(' | ')} (default permuted)
training (defaults: the paper's PermutedMNIST settings):
  --steps N          batches per task (default 1000)
  --batch N          examples per batch (default 128)
  --lr X             RMSProp learning rate (default 1e-4; alpha 0.99, eps 1e-8)
  --mask gn|gg       gn: keep S >= 0; gg: keep the top --density of |S| per layer (default gn)
  --density X        kept fraction for gg masks (default 0.5)
  --train-seed N     seed of score initialisation and batch order (default: the model's seed)
  --transfer         start each task from the mean of the earlier tasks' scores (needs --workers 1)
without task ids (the NN scenario):
  --no-task-ids      one stream of batches, tasks 0..N-1 one after another with no boundaries given; a new
                     mask is allocated when no stored mask fits the data (k · max ν < 1 + ε), stored after
                     --steps batches or when the data changes; batches of learned tasks are skipped
  --stream-batches N batches each task contributes to the stream (default: --steps)
run:
  --workers N        train N tasks at a time in child processes (default 1)
  --backend NAME     wasm | cpu (default wasm)
  --matmul NAME      native | tfjs: the training step's matrix products, the addon's GEMM or tfjs on --backend
                     (default native when the addon is built for this CPU; masks agree to float rounding)
  --quiet            no progress output
  --help`;

export async function trainCommand(argv: string[]): Promise<void> {
  const values = parseFlags(
    argv,
    {
      ...stringFlags(
        'model', 'arch', 'outputs', 'classes', 'seed', 'data', 'data-dir', 'family', 'tasks', 'steps', 'batch',
        'lr', 'mask', 'density', 'train-seed', 'workers', 'backend', 'matmul', 'stream-batches',
      ),
      transfer: { type: 'boolean' },
      'no-task-ids': { type: 'boolean' },
      ...COMMON_SWITCHES,
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const modelDir = required(values.model, '--model DIR', USAGE);
  const tasksFlag = required(values.tasks, '--tasks N', USAGE);
  const data = oneOf<DatasetName>('--data', values.data ?? 'mnist', DATASET_NAMES);
  const family = oneOf<TaskFamily>('--family', values.family ?? 'permuted', TASK_FAMILIES);
  const mask = oneOf<MaskStyle>('--mask', values.mask ?? 'gn', MASK_STYLES);
  const backend = oneOf<'wasm' | 'cpu'>('--backend', values.backend ?? 'wasm', ['wasm', 'cpu']);
  const tasks = int('--tasks', tasksFlag, 1);
  const seed = int('--seed', values.seed ?? '1', 0, 0xffffffff);
  const exists = hasModel(modelDir);
  const config: TrainConfig = {
    data,
    dataDir: values['data-dir'],
    family,
    steps: int('--steps', values.steps ?? '1000', 1),
    batch: int('--batch', values.batch ?? '128', 1),
    lr: number('--lr', values.lr ?? '1e-4'),
    mask,
    density: number('--density', values.density ?? '0.5', { max: 1 }),
    trainSeed: int('--train-seed', values['train-seed'] ?? String(seed), 0, 0xffffffff),
    transfer: values.transfer === true,
    backend,
    matmul: values.matmul === undefined ? defaultMatmul() : oneOf<MatmulChoice>('--matmul', values.matmul, MATMUL_CHOICES),
  };
  let create: ModelSpec | undefined;
  if (!exists) {
    const arch = oneOf<PresetName>('--arch', values.arch ?? 'lenet-300-100', Object.keys(PRESETS) as PresetName[]);
    const outputs = int('--outputs', values.outputs ?? '100', 1);
    const classes = int('--classes', values.classes ?? '10', 1);
    if (classes > outputs) throw new Error(`--classes (${classes}) must not exceed --outputs (${outputs})`);
    create = { architecture: presetArchitecture(arch, outputs, classes), seed, normalization: normalizationFor(config) };
  } else {
    for (const flag of ['arch', 'outputs', 'classes'] as const) {
      if (values[flag] !== undefined) console.error(`note: ${modelDir} already holds a model; --${flag} is ignored`);
    }
  }
  const workers = int('--workers', values.workers ?? '1', 1, 64);
  if (values['no-task-ids']) {
    if (workers > 1 || config.transfer) throw new Error('--no-task-ids trains one stream in order: it takes neither --workers > 1 nor --transfer');
    const batchesPerTask = int('--stream-batches', values['stream-batches'] ?? String(config.steps), 1);
    const log = (line: string) => {
      if (!values.quiet) process.stderr.write(`${line}\n`);
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
  if (values['stream-batches'] !== undefined) throw new Error('--stream-batches goes with --no-task-ids');
  await runTraining({ modelDir, create, config, tasks, workers, reporter: createReporter(process.stderr, values.quiet === true) });
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
