/**
 * `supsup hopsupsup train | eval | capacity`: the paper's Hopfield extension (§3.5) on SplitMNIST and
 * PermutedMNIST. Results land in docs/results.md; the exact commands are there.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { STORAGE_RULES } from '../../core/hopfield-reservoir.ts';
import { DEFAULT_RECALL } from '../../core/mask-recall.ts';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../../data/datasets.ts';
import { capacitySvg } from '../../eval/capacity-plot.ts';
import { capacityCurve, evaluateSplitMnist, trainSplitMnistModel } from '../../eval/hopsupsup-eval.ts';
import { loadHopfieldModel } from '../../model/hopfield-model.ts';
import { selectBackend } from '../../runtime/backend.ts';
import { DEFAULT_NEURON_MASK_TRAINING } from '../../train/neuron-mask-trainer.ts';
import { COMMON_SWITCHES, int, oneOf, parseFlags, required, stringFlags } from '../flags.ts';

const USAGE = `usage: supsup hopsupsup <train | eval | capacity> [options]

  train     learn the 5 SplitMNIST neuron masks (784-2048-2048-10, batch norm, Swish) and store them in a
            new HopSupSup model directory (a Hopfield reservoir per hidden layer; no masks kept)
  eval      per task: accuracy with the task given (mask recalled from its cue) and with the mask recalled
            from each test batch alone; bits recovered, steps to converge
  capacity  PermutedMNIST masks on one network, stored in reservoirs of growing load, Hebbian and Storkey

  --model DIR         the model directory (train, eval)
  --data NAME         ${DATASET_NAMES.join(' | ')} (default mnist)
  --data-dir DIR      read the IDX files from DIR
  --seed N            base network seed (default 1)
  --rule NAME         ${STORAGE_RULES.join(' | ')} (train; default storkey)
  --cue-bits N        cue bits kept per layer and task (train; default 256)
  --epochs N          training epochs per task (default ${DEFAULT_NEURON_MASK_TRAINING.epochs})
  --batch-size N      examples per batch, training and recall (default ${DEFAULT_NEURON_MASK_TRAINING.batchSize})
  --steps N           recall steps T (default ${DEFAULT_RECALL.steps})
  --trained-tasks N   capacity: PermutedMNIST tasks trained (default 30)
  --train-examples N  capacity: training examples per task (default 2000)
  --sizes LIST        capacity: patterns stored per point (default 1,5,10,20,30,60,120,240,400)
  --probes N          capacity: stored trained tasks recalled per point (default 4)
  --out FILE          write the JSON report
  --svg FILE          capacity: write the plot
  --quiet             no progress lines
  --help`;

export async function hopsupsupCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    console.log(USAGE);
    return;
  }
  const v = parseFlags(
    rest,
    {
      ...stringFlags('model', 'data', 'data-dir', 'seed', 'rule', 'cue-bits', 'epochs', 'batch-size', 'steps', 'trained-tasks', 'train-examples', 'sizes', 'probes', 'out', 'svg'),
      ...COMMON_SWITCHES,
    },
    USAGE,
  );
  if (v.help) {
    console.log(USAGE);
    return;
  }
  const log = v.quiet ? () => {} : (line: string) => console.error(line);
  const seed = int('--seed', v.seed ?? '1', 0, 0xffffffff);
  const batchSize = int('--batch-size', v['batch-size'] ?? String(DEFAULT_NEURON_MASK_TRAINING.batchSize), 2);
  const training = { epochs: int('--epochs', v.epochs ?? String(DEFAULT_NEURON_MASK_TRAINING.epochs), 1), batchSize };
  const recall = { steps: int('--steps', v.steps ?? String(DEFAULT_RECALL.steps), 1) };
  const dataset = oneOf('--data', v.data ?? 'mnist', DATASET_NAMES) as DatasetName;
  const started = performance.now();
  let report: unknown;
  await selectBackend('wasm');
  if (sub === 'train') {
    const dir = required(v.model, '--model', USAGE);
    const rule = oneOf('--rule', v.rule ?? 'storkey', STORAGE_RULES);
    const cueBits = int('--cue-bits', v['cue-bits'] ?? '256', 1, 2048);
    const { tasks } = await trainSplitMnistModel(dir, loadDataset(dataset, v['data-dir']), { seed, rule, cueBits, training, log });
    report = { command: 'hopsupsup train', dir, rule, seed, training, tasks: tasks.map(({ id, testAccuracy, seconds }) => ({ id, testAccuracy, seconds })) };
  } else if (sub === 'eval') {
    const dir = required(v.model, '--model', USAGE);
    const model = await loadHopfieldModel(dir);
    const tasks = evaluateSplitMnist(model, loadDataset(dataset, v['data-dir']).test, { batchSize, recall, log });
    const mean = (f: (t: (typeof tasks)[number]) => number) => tasks.reduce((s, t) => s + f(t), 0) / tasks.length;
    const summary = { givenAccuracy: mean((t) => t.givenAccuracy), recalledAccuracy: mean((t) => t.recalledAccuracy), maxSteps: Math.max(...tasks.map((t) => t.maxSteps)) };
    log(`mean: given ${(summary.givenAccuracy * 100).toFixed(2)}%, recalled ${(summary.recalledAccuracy * 100).toFixed(2)}%, worst steps ${summary.maxSteps}`);
    report = { command: 'hopsupsup eval', dir, rule: model.manifest.rule, batchSize, recall: { ...DEFAULT_RECALL, ...recall }, summary, tasks };
  } else if (sub === 'capacity') {
    const trainedTasks = int('--trained-tasks', v['trained-tasks'] ?? '30', 1);
    const sizes = (v.sizes ?? '1,5,10,20,30,60,120,240,400').split(',').map((s) => int('--sizes', s, 1));
    const options = {
      seed,
      trainedTasks,
      trainExamples: int('--train-examples', v['train-examples'] ?? '2000', 2),
      sizes,
      probes: int('--probes', v.probes ?? '4', 1),
      batchSize,
      cueBits: int('--cue-bits', v['cue-bits'] ?? '256', 1, 2048),
      training,
      recall,
      log,
    };
    const curve = capacityCurve(loadDataset(dataset, v['data-dir']), options);
    report = { command: 'hopsupsup capacity', ...options, log: undefined, ...curve };
    if (v.svg) {
      await mkdir(path.dirname(v.svg), { recursive: true });
      await writeFile(v.svg, capacitySvg(curve.points, `HopSupSup reservoir capacity, d = 2048 per layer (PermutedMNIST, seed ${seed})`, trainedTasks));
    }
  } else {
    throw new Error(`unknown hopsupsup subcommand "${sub}"\n\n${USAGE}`);
  }
  const seconds = (performance.now() - started) / 1000;
  log(`done in ${seconds.toFixed(0)} s`);
  if (v.out) {
    await mkdir(path.dirname(v.out), { recursive: true });
    await writeFile(v.out, JSON.stringify({ ...(report as object), seconds, finishedAt: new Date().toISOString() }, null, 2) + '\n');
  }
}
