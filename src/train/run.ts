// A training run: trains the missing tasks 0..N−1 of a family into a model directory, in this process
// (workers = 1) or in N child processes, and appends each finished task to the model through the model
// store, one append at a time, as soon as it is finished. An append is durable when it resolves, so an
// interrupted run loses at most the tasks still in training, and the next run with the same arguments
// skips every task already in the model.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalid } from '../contract/errors.ts';
import type { Architecture, ModelSpec } from '../contract/model.ts';
import { layerShapes } from '../core/architecture.ts';
import { type DatasetSplits } from '../data/datasets.ts';
import { type FaultHook } from '../model/durable-fs.ts';
import { type Manifest } from '../model/manifest.ts';
import { appendTask, appendToSideFile, createModel, hasModel, readManifest, replaceSideFile } from '../model/model-store.ts';
import { TaskTrainer } from './task-trainer.ts';
import { type TrainConfig, type WorkerInit, taskDescription, taskId, taskName, taskTransform } from './task-plan.ts';
import { type TaskStats, type TrainProgress } from './trainer.ts';
import { type FromWorker, type ToWorker } from './worker.ts';

export interface RunOptions {
  modelDir: string;
  /** Used only when the model directory holds no model yet. */
  create?: ModelSpec;
  config: TrainConfig;
  /** Train tasks 0..tasks−1 of the family (those already in the model are skipped). */
  tasks: number;
  workers: number;
  /** Called after each durable append (tests use it to simulate a crash). */
  afterAppend?: (id: string) => void | Promise<void>;
  /** Passed to the model store (crash points inside an append). */
  faults?: FaultHook;
  /** Data already loaded (tests; workers = 1 only). */
  data?: DatasetSplits;
  reporter?: RunReporter;
}

export interface RunReporter {
  start(info: { total: number; pending: number[]; skipped: number; workers: number; model: string }): void;
  progress(worker: number, index: number, p: TrainProgress): void;
  finished(worker: number, index: number, id: string, stats: TaskStats, done: number): void;
  end(summary: RunSummary): void;
}

export interface RunSummary {
  trained: string[];
  skipped: number;
  seconds: number;
  /** Mean seconds of optimisation per task (per worker). */
  secondsPerTask: number;
}

export const TRAINING_LOG = 'training-log.jsonl';
export const TRANSFER_FILE = 'transfer-scores.bin';

export async function runTraining(o: RunOptions): Promise<RunSummary> {
  if (!Number.isInteger(o.tasks) || o.tasks < 1) throw invalid(`tasks must be a positive integer, got ${o.tasks}`);
  if (!Number.isInteger(o.workers) || o.workers < 1) throw invalid(`workers must be a positive integer, got ${o.workers}`);
  if (o.config.transfer && o.workers > 1) {
    throw invalid('transfer initialisation needs the earlier tasks finished first: use --workers 1 with --transfer');
  }
  const manifest = await openOrCreate(o.modelDir, o.create);
  const have = new Set(manifest.tasks.map((t) => t.id));
  const pending: number[] = [];
  for (let i = 0; i < o.tasks; i++) if (!have.has(taskId(o.config.family, i))) pending.push(i);
  const init: WorkerInit = {
    config: o.config,
    architecture: manifest.architecture,
    seed: manifest.seed,
    normalization: manifest.normalization,
  };
  const workers = Math.max(1, Math.min(o.workers, pending.length));
  o.reporter?.start({ total: o.tasks, pending, skipped: o.tasks - pending.length, workers, model: o.modelDir });

  const started = performance.now();
  const trained: string[] = [];
  let trainMs = 0;
  // Appends run one after another, in completion order.
  let appendChain: Promise<void> = Promise.resolve();
  const commit = (worker: number, index: number, mask: Uint32Array, stats: TaskStats): Promise<void> => {
    appendChain = appendChain.then(async () => {
      const id = taskId(o.config.family, index);
      await appendTask(
        o.modelDir,
        {
          id,
          name: taskName(o.config, index),
          description: taskDescription(o.config, index, stats),
          transform: taskTransform(o.config.family, index),
        },
        mask,
        { faults: o.faults },
      );
      trained.push(id);
      trainMs += stats.ms;
      await appendToSideFile(o.modelDir, TRAINING_LOG, JSON.stringify({ id, index, worker, ...stats, config: o.config }) + '\n');
      o.reporter?.finished(worker, index, id, stats, trained.length);
      await o.afterAppend?.(id);
    });
    return appendChain;
  };

  try {
    if (pending.length > 0) {
      if (workers === 1) await trainInProcess(o, init, pending, commit);
      else await trainInWorkers(o, init, pending, workers, commit);
    }
  } finally {
    // Even when interrupted, let an append already under way finish: it is a finished task.
    await appendChain.catch(() => undefined);
  }
  await appendChain;
  const summary: RunSummary = {
    trained,
    skipped: o.tasks - pending.length,
    seconds: (performance.now() - started) / 1000,
    secondsPerTask: trained.length ? trainMs / 1000 / trained.length : 0,
  };
  o.reporter?.end(summary);
  return summary;
}

async function openOrCreate(dir: string, spec: ModelSpec | undefined): Promise<Manifest> {
  if (hasModel(dir)) return readManifest(dir);
  if (!spec) throw new Error(`${dir} holds no model: give --arch, --outputs and --seed to create one`);
  return createModel(dir, spec);
}

type Commit = (worker: number, index: number, mask: Uint32Array, stats: TaskStats) => Promise<void>;

async function trainInProcess(o: RunOptions, init: WorkerInit, pending: number[], commit: Commit): Promise<void> {
  const trainer = await TaskTrainer.create(init, o.data);
  const transfer = o.config.transfer ? await readTransfer(o.modelDir, init.architecture) : undefined;
  for (const index of pending) {
    const initScores = transfer && transfer.count > 0 ? transfer.sum.map((s) => s.map((v) => v / transfer.count)) : undefined;
    const r = trainer.train(index, (p) => o.reporter?.progress(0, index, p), initScores);
    const { mask, scores, ...stats } = r;
    await commit(0, index, mask, stats);
    if (transfer && scores) {
      scores.forEach((s, l) => {
        for (let i = 0; i < s.length; i++) transfer.sum[l][i] += s[i];
      });
      transfer.count++;
      await writeTransfer(o.modelDir, transfer);
    }
  }
}

/**
 * Transfer state kept beside the model: the running sum of the finished tasks' scores and their count
 * (float32, layer after layer, then the count as a float64). Written after the task's append: a crash in
 * between leaves the sum one task short, which only changes the next task's starting point.
 */
interface TransferState {
  sum: Float32Array[];
  count: number;
}

async function readTransfer(dir: string, arch: Architecture): Promise<TransferState> {
  const shapes = layerShapes(arch);
  const sum = shapes.map((s) => new Float32Array(s.in * s.out));
  const file = path.join(dir, TRANSFER_FILE);
  if (!existsSync(file)) return { sum, count: 0 };
  const buf = await readFile(file);
  const floats = sum.reduce((n, s) => n + s.length, 0);
  if (buf.length !== floats * 4 + 8) throw new Error(`${file}: ${buf.length} bytes, expected ${floats * 4 + 8} for this architecture`);
  let o = 0;
  for (const s of sum) {
    s.set(new Float32Array(buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + s.length * 4)));
    o += s.length * 4;
  }
  return { sum, count: buf.readDoubleLE(o) };
}

async function writeTransfer(dir: string, t: TransferState): Promise<void> {
  const count = Buffer.alloc(8);
  count.writeDoubleLE(t.count);
  await replaceSideFile(dir, TRANSFER_FILE, Buffer.concat([...t.sum.map((s) => Buffer.from(s.buffer, s.byteOffset, s.byteLength)), count]));
}

async function trainInWorkers(o: RunOptions, init: WorkerInit, pending: number[], n: number, commit: Commit): Promise<void> {
  const queue = pending.slice();
  const children: ChildProcess[] = [];
  const workerFile = fileURLToPath(new URL('./worker.ts', import.meta.url));
  const tsx = import.meta.resolve('tsx');
  let failure: Error | undefined;
  const stopAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  const onSignal = () => {
    failure ??= new Error('interrupted: finished tasks are in the model; run the same command again to resume');
    stopAll();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await Promise.all(
      Array.from({ length: n }, (_, w) =>
        new Promise<void>((resolve) => {
          const child = fork(workerFile, [], { execArgv: ['--import', tsx], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
          children.push(child);
          const sendNext = () => {
            const index = failure ? undefined : queue.shift();
            if (index === undefined) child.send({ type: 'stop' } satisfies ToWorker);
            else child.send({ type: 'task', index } satisfies ToWorker);
          };
          child.on('message', (m: FromWorker) => {
            if (m.type === 'ready') sendNext();
            else if (m.type === 'progress') o.reporter?.progress(w, m.index, m.progress);
            else if (m.type === 'done') {
              commit(w, m.index, Uint32Array.from(m.mask), m.stats).then(sendNext, (e: Error) => {
                failure ??= e;
                stopAll();
              });
            } else if (m.type === 'error') {
              failure ??= new Error(`worker ${w}: ${m.message}`);
              stopAll();
            }
          });
          child.on('exit', (code, signal) => {
            if (code !== 0 && !failure) failure = new Error(`worker ${w} exited with ${signal ?? `code ${code}`}`);
            if (failure) stopAll();
            resolve();
          });
          child.send({ type: 'init', init } satisfies ToWorker);
        }),
      ),
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (failure) throw failure;
}
