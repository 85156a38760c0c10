// Trains tasks by index for one process: loads the data and the base network once, then one supermask per
// call. Used in-process (--workers 1) and by each child worker (worker.ts).
import { type BaseNetwork, generateBaseNetwork } from '../core/base-network.ts';
import { type DatasetSplits, loadDataset } from '../data/datasets.ts';
import { selectBackend } from '../platform/backend.ts';
import { taskSource } from './batches.ts';
import { selectStepProducts } from './step-products.ts';
import { type WorkerInit, taskTransform } from './task-plan.ts';
import { type TrainProgress, type TrainedTask, taskSeed, trainSupermask } from './trainer.ts';

export class TaskTrainer {
  private constructor(
    readonly init: WorkerInit,
    private readonly base: BaseNetwork,
    private readonly data: DatasetSplits,
  ) {}

  static async create(init: WorkerInit, data?: DatasetSplits): Promise<TaskTrainer> {
    await selectBackend(init.config.backend);
    const splits = data ?? loadDataset(init.config.data, init.config.dataDir);
    if (splits.train.width * splits.train.height !== init.architecture.inputSize) {
      throw new Error(
        `${splits.train.name} has ${splits.train.width}×${splits.train.height} images; the model takes ${init.architecture.inputSize} inputs`,
      );
    }
    return new TaskTrainer(init, generateBaseNetwork(init.architecture, init.seed), splits);
  }

  train(index: number, onProgress?: (p: TrainProgress) => void, initScores?: Float32Array[]): TrainedTask {
    const { config, normalization } = this.init;
    const source = taskSource(taskTransform(config.family, index), this.data.train);
    return trainSupermask(this.base, source, {
      steps: config.steps,
      batch: config.batch,
      lr: config.lr,
      mask: config.mask,
      density: config.density,
      seed: taskSeed(config.trainSeed, index),
      normalization,
      initScores,
      products: selectStepProducts(config.matmul),
      keepScores: config.transfer,
      onProgress,
      progressEvery: Math.max(1, Math.min(50, Math.floor(config.steps / 10))),
    });
  }
}
