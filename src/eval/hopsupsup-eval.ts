// HopSupSup experiments: SplitMNIST training into a model directory, accuracy with the task given
// (mask recalled from the task's cue) against the task recalled from the data, and the capacity of a
// reservoir (tasks stored against recall accuracy, Hebbian against Storkey) on PermutedMNIST.
import * as tf from '@tensorflow/tfjs-core';
import { HopfieldReservoir, type StorageRule, agreement, maskOf, patternOf } from '../core/hopfield-reservoir.ts';
import { type RecallOptions, recallFromData } from '../core/mask-recall.ts';
import { HOPSUPSUP_ARCHITECTURE, NeuronMaskedNetwork, maskTensors } from '../core/neuron-masked-network.ts';
import { Xoshiro128 } from '../core/prng.ts';
import type { Dataset } from '../data/datasets.ts';
import { type TaskTransform, permutedTask, selectExamples, splitTask, taskDataset } from '../data/transforms.ts';
import { type HopfieldModel, createHopfieldModel, cueNeurons, cueOfTask } from '../model/hopfield-model.ts';
import { type LabelledExamples, type NeuronMaskTraining, batchOf, evaluationBatches, maskAccuracy, trainNeuronMasks } from '../train/neuron-mask-trainer.ts';

export const SPLIT_MNIST_TASKS = 5;

/** A task's examples with the original labels 0–9 kept (the paper's SplitMNIST for HopSupSup: 10 outputs). */
export function examplesKeepingLabels(t: TaskTransform, ds: Dataset): LabelledExamples {
  const view = taskDataset(t, ds);
  const picked = selectExamples(t, ds.labels);
  return { images: view.images, labels: Uint8Array.from(picked, (i) => ds.labels[i]), count: view.count };
}

export interface TrainedTask {
  id: string;
  masks: Uint8Array[];
  testAccuracy: number;
  seconds: number;
}

/** Trains the 5 SplitMNIST tasks and writes them into a new model directory. */
export async function trainSplitMnistModel(
  dir: string,
  data: { train: Dataset; test: Dataset },
  options: { seed: number; rule: StorageRule; cueBits: number; training: NeuronMaskTraining; log: (line: string) => void },
): Promise<{ model: HopfieldModel; tasks: TrainedTask[] }> {
  const net = new NeuronMaskedNetwork(HOPSUPSUP_ARCHITECTURE, options.seed);
  try {
    const tasks: TrainedTask[] = [];
    for (let i = 0; i < SPLIT_MNIST_TASKS; i++) {
      const t = splitTask(i);
      const started = performance.now();
      const masks = trainNeuronMasks(net, examplesKeepingLabels(t, data.train), { ...options.training, seed: (options.training.seed ?? 1) + i });
      const seconds = (performance.now() - started) / 1000;
      const testAccuracy = maskAccuracy(net, masks, examplesKeepingLabels(t, data.test));
      tasks.push({ id: `split-${i}`, masks, testAccuracy, seconds });
      options.log(`split-${i} (digits ${2 * i}, ${2 * i + 1}): test accuracy ${(testAccuracy * 100).toFixed(2)}% in ${seconds.toFixed(1)} s`);
    }
    const model = await createHopfieldModel(
      dir,
      { architecture: HOPSUPSUP_ARCHITECTURE, seed: options.seed, rule: options.rule, cueBits: options.cueBits },
      tasks.map((t, i) => ({ id: t.id, name: `SplitMNIST digits ${2 * i} and ${2 * i + 1}`, masks: t.masks })),
    );
    return { model, tasks };
  } finally {
    net.dispose();
  }
}

export interface TaskRecallReport {
  id: string;
  examples: number;
  /** Accuracy with the task given: the mask recalled from the task's cue. */
  givenAccuracy: number;
  /** Accuracy with the mask recalled from each test batch alone. */
  recalledAccuracy: number;
  /** Fraction of batches whose recalled mask equals the cue-recalled one, bit for bit. */
  exactRecall: number;
  /** Mean fraction of mask bits (both layers) recalled as in the cue-recalled mask. */
  bitsRecovered: number;
  /** Steps after which the recalled mask no longer changed: mean and worst over batches. */
  meanSteps: number;
  maxSteps: number;
  seconds: number;
}

/** Task given vs task recalled, per SplitMNIST task of a model, on test batches of `batchSize`. */
export function evaluateSplitMnist(
  model: HopfieldModel,
  test: Dataset,
  options: { batchSize: number; recall?: RecallOptions; log: (line: string) => void },
): TaskRecallReport[] {
  const { manifest, reservoirs } = model;
  const notSplit = manifest.tasks.find((t, i) => t.id !== `split-${i}`);
  if (notSplit) throw new Error(`task "${notSplit.id}" is not SplitMNIST task split-${manifest.tasks.indexOf(notSplit)}: this evaluation needs the tasks split-0, split-1, … in order (as \`supsup hopsupsup train\` writes them)`);
  const net = new NeuronMaskedNetwork(manifest.architecture, manifest.seed);
  try {
    return manifest.tasks.map((task, i) => {
      const started = performance.now();
      const given = reservoirs.map((r, l) => maskOf(r.recallFromCue(cueOfTask(manifest, task, l)).pattern));
      const data = examplesKeepingLabels(splitTask(i), test);
      const report = recallReport(net, reservoirs, given, data, options.batchSize, options.recall);
      const out = { id: task.id, examples: data.count, ...report, seconds: (performance.now() - started) / 1000 };
      options.log(
        `${task.id}: given ${(out.givenAccuracy * 100).toFixed(2)}%, recalled ${(out.recalledAccuracy * 100).toFixed(2)}%, ` +
          `exact ${(out.exactRecall * 100).toFixed(0)}% of batches, bits ${(out.bitsRecovered * 100).toFixed(2)}%, steps mean ${out.meanSteps.toFixed(1)} max ${out.maxSteps}`,
      );
      return out;
    });
  } finally {
    net.dispose();
  }
}

function recallReport(
  net: NeuronMaskedNetwork,
  reservoirs: HopfieldReservoir[],
  reference: Uint8Array[],
  data: LabelledExamples,
  batchSize: number,
  recall: RecallOptions | undefined,
  maxBatches = Infinity,
): Omit<TaskRecallReport, 'id' | 'examples' | 'seconds'> {
  const { inputSize, outputs } = net.architecture;
  const width = reference.reduce((n, m) => n + m.length, 0);
  const referenceTensors = maskTensors(reference);
  let givenCorrect = 0;
  let recalledCorrect = 0;
  let counted = 0;
  let exact = 0;
  let bits = 0;
  const steps: number[] = [];
  for (const rows of evaluationBatches(data.count, batchSize).slice(0, maxBatches)) {
    const { x, y } = batchOf(data, rows, inputSize, outputs);
    const result = recallFromData(net, reservoirs, x, recall);
    const recalled = maskTensors(result.masks);
    const correct = (masks: tf.Tensor2D[]) =>
      tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(net.logits(x, masks), 1), tf.argMax(y, 1)), 'int32')).dataSync()[0]);
    givenCorrect += correct(referenceTensors);
    recalledCorrect += correct(recalled);
    counted += rows.length;
    const same = result.masks.reduce((n, m, l) => n + agreement(m, reference[l]), 0);
    bits += same / width;
    if (same === width) exact++;
    steps.push(result.convergedAfter);
    tf.dispose([x, y, ...recalled]);
  }
  tf.dispose(referenceTensors);
  return {
    givenAccuracy: givenCorrect / counted,
    recalledAccuracy: recalledCorrect / counted,
    exactRecall: exact / steps.length,
    bitsRecovered: bits / steps.length,
    meanSteps: steps.reduce((a, b) => a + b, 0) / steps.length,
    maxSteps: Math.max(...steps),
  };
}

export interface CapacityPoint {
  rule: StorageRule;
  /** Patterns in each layer's reservoir: trained tasks, plus random fillers past the trained ones. */
  stored: number;
  trainedStored: number;
  /** Mean over the probe tasks. */
  givenAccuracy: number;
  recalledAccuracy: number;
  /** Fraction of mask bits recalled from data as trained. */
  bitsFromData: number;
  /** Fraction of mask bits recalled from a task's 256-bit cue as trained (the task-id path). */
  bitsFromCue: number;
  meanSteps: number;
}

/**
 * PermutedMNIST tasks on one network: trains `trainedTasks` masks, then for each size in `sizes` stores the
 * first min(size, trainedTasks) trained masks plus random balanced masks up to `size` (standing in for
 * further tasks), and recalls `probes` of the trained tasks from one test batch each.
 */
export function capacityCurve(
  data: { train: Dataset; test: Dataset },
  options: {
    seed: number;
    trainedTasks: number;
    trainExamples: number;
    sizes: number[];
    probes: number;
    batchSize: number;
    cueBits: number;
    training: NeuronMaskTraining;
    recall?: RecallOptions;
    log: (line: string) => void;
  },
): { points: CapacityPoint[]; trainedAccuracy: number[] } {
  const net = new NeuronMaskedNetwork(HOPSUPSUP_ARCHITECTURE, options.seed);
  try {
    const widths = HOPSUPSUP_ARCHITECTURE.hidden;
    const tasks = Array.from({ length: options.trainedTasks }, (_, i) => {
      const t = permutedTask(i);
      const train = shuffledPrefix(examplesKeepingLabels(t, data.train), options.trainExamples, 7 + i);
      const test = examplesKeepingLabels(t, data.test);
      const started = performance.now();
      const masks = trainNeuronMasks(net, train, { ...options.training, seed: 100 + i });
      const accuracy = maskAccuracy(net, masks, test);
      options.log(`permuted-${i}: test accuracy ${(accuracy * 100).toFixed(2)}% in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      return { masks, test, accuracy };
    });
    const rng = new Xoshiro128(options.seed ^ 0x5eed);
    const fillers = Array.from({ length: Math.max(0, Math.max(...options.sizes) - tasks.length) }, () =>
      widths.map((d) => Uint8Array.from({ length: d }, () => rng.nextUint32() & 1)),
    );
    const points: CapacityPoint[] = [];
    for (const rule of ['hebbian', 'storkey'] as const) {
      for (const size of options.sizes) {
        const trainedStored = Math.min(size, tasks.length);
        const reservoirs = widths.map((d) => new HopfieldReservoir(d));
        const stored = [...tasks.slice(0, trainedStored).map((t) => t.masks), ...fillers.slice(0, size - trainedStored)];
        for (const masks of stored) masks.forEach((m, l) => reservoirs[l].store(patternOf(m), rule));
        const probeIds = probeIndices(trainedStored, options.probes);
        let given = 0;
        let recalled = 0;
        let bitsData = 0;
        let bitsCue = 0;
        let steps = 0;
        for (const k of probeIds) {
          const report = recallReport(net, reservoirs, tasks[k].masks, tasks[k].test, options.batchSize, options.recall, 1);
          given += report.givenAccuracy;
          recalled += report.recalledAccuracy;
          bitsData += report.bitsRecovered;
          steps += report.meanSteps;
          bitsCue += cueBitsRecovered(reservoirs, tasks[k].masks, options.cueBits);
        }
        const n = probeIds.length;
        const point = { rule, stored: size, trainedStored, givenAccuracy: given / n, recalledAccuracy: recalled / n, bitsFromData: bitsData / n, bitsFromCue: bitsCue / n, meanSteps: steps / n };
        points.push(point);
        options.log(
          `${rule} ${size} stored (${trainedStored} trained): given ${(point.givenAccuracy * 100).toFixed(2)}%, recalled ${(point.recalledAccuracy * 100).toFixed(2)}%, ` +
            `bits from data ${(point.bitsFromData * 100).toFixed(2)}%, from cue ${(point.bitsFromCue * 100).toFixed(2)}%, steps ${point.meanSteps.toFixed(1)}`,
        );
      }
    }
    return { points, trainedAccuracy: tasks.map((t) => t.accuracy) };
  } finally {
    net.dispose();
  }
}

/** Up to `probes` indices spread over 0..n−1, always including the first and the last stored. */
function probeIndices(n: number, probes: number): number[] {
  if (n <= probes) return Array.from({ length: n }, (_, i) => i);
  return Array.from(new Set(Array.from({ length: probes }, (_, k) => Math.round((k * (n - 1)) / (probes - 1)))));
}

function cueBitsRecovered(reservoirs: HopfieldReservoir[], masks: Uint8Array[], cueBits: number): number {
  let same = 0;
  let total = 0;
  reservoirs.forEach((r, l) => {
    const cue = new Map(cueNeurons(r.size, cueBits).map((n) => [n, masks[l][n] ? 1 : -1] as [number, number]));
    same += agreement(maskOf(r.recallFromCue(cue).pattern), masks[l]);
    total += r.size;
  });
  return same / total;
}

/** `count` examples drawn without replacement in a seeded random order (the datasets are sorted by digit). */
function shuffledPrefix(data: LabelledExamples, count: number, seed: number): LabelledExamples {
  const rows = evaluationBatches(data.count, data.count, seed)[0].subarray(0, Math.min(count, data.count));
  const images = new Float32Array(rows.length * 784);
  const labels = new Uint8Array(rows.length);
  rows.forEach((r, i) => {
    images.set(data.images.subarray(r * 784, (r + 1) * 784), i * 784);
    labels[i] = data.labels[r];
  });
  return { images, labels, count: rows.length };
}
