// `supsup hopsupsup train | eval | capacity`: the paper's Hopfield extension (§3.5) on SplitMNIST and
// PermutedMNIST. Results land in docs/results.md; the exact commands are there. One settings table per
// subcommand; the rows they share are written once below.
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { STORAGE_RULES } from '../../core/hopfield-reservoir.ts';
import { DEFAULT_RECALL } from '../../core/mask-recall.ts';
import { DATASET_NAMES, loadDataset } from '../../data/datasets.ts';
import { capacitySvg } from '../../eval/capacity-plot.ts';
import { capacityCurve, evaluateSplitMnist, trainSplitMnistModel } from '../../eval/hopsupsup-eval.ts';
import { loadHopfieldModel } from '../../model/hopfield-model.ts';
import { selectBackend } from '../../platform/backend.ts';
import { ConfigError, HELP_SWITCH, parseSettings, QUIET_SWITCH, type Setting, usage } from '../../platform/settings.ts';
import { DEFAULT_NEURON_MASK_TRAINING } from '../../train/neuron-mask-trainer.ts';

const MODEL = { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', required: true, help: 'the model directory' } as const;
const SEED = { key: 'seed', flag: 'seed', kind: 'count', arg: 'N', min: 0, max: 0xffffffff, default: '1', help: 'base network seed' } as const;
const CUE_BITS = { key: 'cueBits', flag: 'cue-bits', kind: 'count', arg: 'N', min: 1, max: 2048, default: '256', help: 'cue bits kept per layer and task' } as const;
const DATA = [
  { key: 'data', flag: 'data', kind: 'string', arg: 'NAME', choices: DATASET_NAMES, default: 'mnist', help: DATASET_NAMES.join(' | ') },
  { key: 'dataDir', flag: 'data-dir', kind: 'string', arg: 'DIR', help: 'read the IDX files from DIR instead of the built-in source' },
] as const;
const EPOCHS = { key: 'epochs', flag: 'epochs', kind: 'count', arg: 'N', min: 1, default: String(DEFAULT_NEURON_MASK_TRAINING.epochs), help: 'training epochs per task' } as const;
const BATCH_SIZE = {
  key: 'batchSize',
  flag: 'batch-size',
  kind: 'count',
  arg: 'N',
  min: 2,
  default: String(DEFAULT_NEURON_MASK_TRAINING.batchSize),
  help: 'examples per batch, training and recall',
} as const;
const STEPS = { key: 'steps', flag: 'steps', kind: 'count', arg: 'N', min: 1, default: String(DEFAULT_RECALL.steps), help: 'recall steps T' } as const;
const OUT = { key: 'out', flag: 'out', kind: 'string', arg: 'FILE', help: 'write the JSON report' } as const;
const END = [OUT, QUIET_SWITCH, HELP_SWITCH] as const;

const SUBCOMMANDS = {
  train: {
    head: `usage: supsup hopsupsup train --model DIR [options]

Learns the 5 SplitMNIST neuron masks (784-2048-2048-10, batch norm, Swish) and stores them in a new HopSupSup
model directory (a Hopfield reservoir per hidden layer; no masks kept).`,
    settings: [
      MODEL,
      ...DATA,
      SEED,
      { key: 'rule', flag: 'rule', kind: 'string', arg: 'NAME', choices: STORAGE_RULES, default: 'storkey', help: STORAGE_RULES.join(' | ') },
      CUE_BITS,
      EPOCHS,
      BATCH_SIZE,
      ...END,
    ],
  },
  eval: {
    head: `usage: supsup hopsupsup eval --model DIR [options]

Per task: accuracy with the task given (mask recalled from its cue) and with the mask recalled from each test
batch alone; bits recovered, steps to converge.`,
    settings: [MODEL, ...DATA, BATCH_SIZE, STEPS, ...END],
  },
  capacity: {
    head: `usage: supsup hopsupsup capacity [options]

PermutedMNIST masks on one network, stored in reservoirs of growing load, Hebbian and Storkey.`,
    settings: [
      ...DATA,
      SEED,
      { key: 'trainedTasks', flag: 'trained-tasks', kind: 'count', arg: 'N', min: 1, default: '30', help: 'PermutedMNIST tasks trained' },
      { key: 'trainExamples', flag: 'train-examples', kind: 'count', arg: 'N', min: 2, default: '2000', help: 'training examples per task' },
      { key: 'sizes', flag: 'sizes', kind: 'counts', arg: 'LIST', min: 1, default: '1,5,10,20,30,60,120,240,400', help: 'patterns stored per point' },
      { key: 'probes', flag: 'probes', kind: 'count', arg: 'N', min: 1, default: '4', help: 'stored trained tasks recalled per point' },
      CUE_BITS,
      EPOCHS,
      BATCH_SIZE,
      STEPS,
      { key: 'svg', flag: 'svg', kind: 'string', arg: 'FILE', help: 'write the plot' },
      ...END,
    ],
  },
} as const satisfies Record<string, { head: string; settings: readonly Setting[] }>;

type Subcommand = keyof typeof SUBCOMMANDS;
const usageOf = (sub: Subcommand) => usage(SUBCOMMANDS[sub].head, SUBCOMMANDS[sub].settings);

const USAGE = `usage: supsup hopsupsup <train | eval | capacity> [options]

  train     learn the 5 SplitMNIST neuron masks and store them in a new HopSupSup model directory
  eval      per task: accuracy with the task given and with the mask recalled from each test batch alone
  capacity  PermutedMNIST masks on one network, stored in reservoirs of growing load, Hebbian and Storkey

Run "supsup hopsupsup <subcommand> --help" for its options.`;

export async function hopsupsupCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') return void console.log(USAGE);
  if (!Object.hasOwn(SUBCOMMANDS, sub)) throw new ConfigError(`unknown hopsupsup subcommand "${sub}"\n\n${USAGE}`);
  const name = sub as Subcommand;
  if (rest.includes('--help') || rest.includes('-h')) return void console.log(usageOf(name));
  const started = performance.now();
  await selectBackend('wasm');
  const { report, quiet, out } = await (name === 'train' ? train(rest) : name === 'eval' ? evaluate(rest) : capacity(rest));
  const seconds = (performance.now() - started) / 1000;
  if (!quiet) console.error(`done in ${seconds.toFixed(0)} s`);
  if (out) {
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify({ ...report, seconds, finishedAt: new Date().toISOString() }, null, 2) + '\n');
  }
}

type Outcome = { report: object; quiet: boolean; out: string | undefined };

const logger = (quiet: boolean) => (quiet ? () => {} : (line: string) => console.error(line));

async function train(argv: string[]): Promise<Outcome> {
  const { values: v } = parseSettings(SUBCOMMANDS.train.settings, argv, usageOf('train'));
  const training = { epochs: v.epochs, batchSize: v.batchSize };
  const { tasks } = await trainSplitMnistModel(v.model, loadDataset(v.data, v.dataDir), { seed: v.seed, rule: v.rule, cueBits: v.cueBits, training, log: logger(v.quiet) });
  const report = {
    command: 'hopsupsup train',
    dir: v.model,
    rule: v.rule,
    seed: v.seed,
    training,
    tasks: tasks.map(({ id, testAccuracy, seconds }) => ({ id, testAccuracy, seconds })),
  };
  return { report, quiet: v.quiet, out: v.out };
}

async function evaluate(argv: string[]): Promise<Outcome> {
  const { values: v } = parseSettings(SUBCOMMANDS.eval.settings, argv, usageOf('eval'));
  const log = logger(v.quiet);
  const recall = { steps: v.steps };
  const model = await loadHopfieldModel(v.model);
  const tasks = evaluateSplitMnist(model, loadDataset(v.data, v.dataDir).test, { batchSize: v.batchSize, recall, log });
  const mean = (f: (t: (typeof tasks)[number]) => number) => tasks.reduce((s, t) => s + f(t), 0) / tasks.length;
  const summary = { givenAccuracy: mean((t) => t.givenAccuracy), recalledAccuracy: mean((t) => t.recalledAccuracy), maxSteps: Math.max(...tasks.map((t) => t.maxSteps)) };
  log(`mean: given ${(summary.givenAccuracy * 100).toFixed(2)}%, recalled ${(summary.recalledAccuracy * 100).toFixed(2)}%, worst steps ${summary.maxSteps}`);
  const report = { command: 'hopsupsup eval', dir: v.model, rule: model.manifest.rule, batchSize: v.batchSize, recall: { ...DEFAULT_RECALL, ...recall }, summary, tasks };
  return { report, quiet: v.quiet, out: v.out };
}

async function capacity(argv: string[]): Promise<Outcome> {
  const { values: v } = parseSettings(SUBCOMMANDS.capacity.settings, argv, usageOf('capacity'));
  const options = {
    seed: v.seed,
    trainedTasks: v.trainedTasks,
    trainExamples: v.trainExamples,
    sizes: v.sizes,
    probes: v.probes,
    batchSize: v.batchSize,
    cueBits: v.cueBits,
    training: { epochs: v.epochs, batchSize: v.batchSize },
    recall: { steps: v.steps },
  };
  const curve = capacityCurve(loadDataset(v.data, v.dataDir), { ...options, log: logger(v.quiet) });
  if (v.svg) {
    await mkdir(path.dirname(v.svg), { recursive: true });
    await writeFile(v.svg, capacitySvg(curve.points, `HopSupSup reservoir capacity, d = 2048 per layer (PermutedMNIST, seed ${v.seed})`, v.trainedTasks));
  }
  return { report: { command: 'hopsupsup capacity', ...options, ...curve }, quiet: v.quiet, out: v.out };
}
