// What a training run trains: the tasks of a family by index, their ids, names, transforms, and the
// configuration each worker needs to train one of them without the parent's state.
import type { ModelSpec } from '../contract/model.ts';
import { type DatasetName } from '../data/datasets.ts';
import { type TaskFamily, type TaskTransform, familyTask } from '../data/transforms.ts';
import { type MaskStyle } from '../core/masked-mlp.ts';
import { type MatmulChoice } from './step-products.ts';

export interface TrainConfig {
  data: DatasetName;
  /** IDX directory; undefined: the built-in source of `data`. */
  dataDir?: string;
  family: TaskFamily;
  steps: number;
  batch: number;
  lr: number;
  mask: MaskStyle;
  /** GG masks only. */
  density: number;
  /** Seed of the score initialisation and batch order (per task: taskSeed(trainSeed, index)). */
  trainSeed: number;
  /** Start each task from the mean of the earlier tasks' scores (sequential runs only). */
  transfer: boolean;
  backend: 'wasm' | 'cpu';
  /** The matrix products (step-products.ts); undefined: native when built, else tfjs on `backend`. */
  matmul?: MatmulChoice;
}

/** Everything a worker needs: the run's config plus the model's base network and normalisation. */
export interface WorkerInit extends ModelSpec {
  config: TrainConfig;
}

const FAMILY_LABEL: Record<TaskFamily, string> = { permuted: 'Permuted', rotated: 'Rotated', split: 'Split' };
const DATA_LABEL: Record<DatasetName, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST' };

export function taskId(family: TaskFamily, index: number): string {
  return `${family}-${index}`;
}

export function taskName(config: Pick<TrainConfig, 'family' | 'data'>, index: number): string {
  return `${FAMILY_LABEL[config.family]}${DATA_LABEL[config.data]} task ${index}`;
}

export function taskTransform(family: TaskFamily, index: number): TaskTransform {
  return familyTask(family, index);
}

/** The task's description in the manifest: how it was trained and how well it fit its training data. */
export function taskDescription(config: TrainConfig, index: number, stats: { finalLoss: number; finalAccuracy: number }): string {
  const mask = config.mask === 'gg' ? `GG mask (top ${config.density} of |S| per layer)` : 'GN mask (S >= 0)';
  return (
    `${taskName(config, index)}, trained by supsup train: ${mask}, ${config.steps} batches of ${config.batch}, ` +
    `RMSProp lr ${config.lr}, train seed ${config.trainSeed}${config.transfer ? ', transfer init' : ''}; ` +
    `last 10% of steps: loss ${stats.finalLoss.toFixed(4)}, train accuracy ${(100 * stats.finalAccuracy).toFixed(2)}%`
  );
}
