import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { Engine } from '../core/engine.ts';
import { EngineError } from '../core/engine-error.ts';
import { appendTask, readManifest, removeTask } from '../model/model-store.ts';
import type { TaskEntry } from '../model/manifest.ts';
import { isHopfieldModel } from '../model/hopfield-model.ts';
import { HopfieldWorkerModel } from './hopfield-worker.ts';
import { openEngine } from './open-engine.ts';
import { type ModelInfo, type NewTaskRequest, type WorkerReply, type WorkerRequest, type WorkerResults, taskInfo } from './worker-protocol.ts';

/**
 * The engine worker: owns the Engine and the model directory, one request at a time. TensorFlow.js on
 * wasm computes synchronously, so it runs here, off the main thread that answers /healthz and /metrics.
 * Task changes are durable first (model store), then applied to the engine; a failure leaves both as they were.
 */
let engine: Engine<TaskEntry> | undefined;
let dir = '';
/** Set instead of `engine` when the directory holds a HopSupSup model. */
let hopfield: HopfieldWorkerModel | undefined;

const handlers: { [K in WorkerRequest['op']]: (r: Extract<WorkerRequest, { op: K }>) => Promise<WorkerResults[K]> | WorkerResults[K] } = {
  async open(r) {
    if (await isHopfieldModel(r.dir)) {
      const { opened, info } = await HopfieldWorkerModel.open(r.dir, r);
      hopfield?.engine.dispose();
      hopfield = opened;
      return info;
    }
    const opened = await openEngine(r.dir, { backend: r.backend, kernels: r.kernels, maxBatch: r.maxBatch, epsilon: r.epsilon });
    const { architecture, seed, normalization, tasks } = opened.manifest;
    engine?.dispose();
    engine = opened.engine;
    dir = r.dir;
    return {
      dir,
      architecture,
      seed,
      normalization,
      limits: engine.limits,
      epsilonSource: opened.epsilonSource,
      tasks: tasks.map(taskInfo),
      maskBankBytes: engine.maskBankBytes,
      backend: opened.backend,
      kernels: opened.kernels,
    } satisfies ModelInfo;
  },

  classify(r) {
    const start = performance.now();
    const predictions = hopfield ? hopfield.engine.classify(r.call) : requireEngine().classify(r.call);
    return { predictions, seconds: (performance.now() - start) / 1000 };
  },

  async addTask(r) {
    if (hopfield) return hopfield.addTask(r.task);
    const e = requireEngine();
    const t = r.task;
    if (e.task(t.id)) throw new EngineError('already_exists', `task "${t.id}" already exists`);
    const entry = await storeCall(() => appendTask(dir, newTask(t), t.mask));
    try {
      e.addTask(t.id, t.mask, entry);
    } catch (err) {
      await removeTask(dir, t.id).catch(() => undefined);
      throw err;
    }
    return { task: taskInfo(entry), maskBankBytes: e.maskBankBytes };
  },

  async removeTask(r) {
    if (hopfield) return hopfield.removeTask(r.id);
    const e = requireEngine();
    if (!e.task(r.id)) throw new EngineError('not_found', `task "${r.id}" does not exist`);
    let warning: string | undefined;
    try {
      await storeCall(() => removeTask(dir, r.id));
    } catch (err) {
      // The store may have removed the task durably and then failed to compact: the removal stands.
      const stillThere = await readManifest(dir).then((m) => m.tasks.some((t) => t.id === r.id), () => true);
      if (stillThere) throw err;
      warning = (err as Error).message;
    }
    e.removeTask(r.id);
    return { maskBankBytes: e.maskBankBytes, warning };
  },
};

function newTask(t: NewTaskRequest) {
  return { id: t.id, name: t.name, transform: t.transform, ...(t.description !== undefined ? { description: t.description } : {}) };
}

/** The store reports bad input as RangeError: that is the caller's mistake, not the server's. */
async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RangeError) throw new EngineError('invalid_argument', err.message);
    throw err;
  }
}

function requireEngine(): Engine<TaskEntry> {
  if (!engine) throw new EngineError('unavailable', 'the model is not loaded yet');
  return engine;
}

const port = parentPort!;
// One request at a time, in arrival order: a task change never interleaves with a forward pass.
let chain: Promise<void> = Promise.resolve();
port.on('message', (msg: { seq: number } & WorkerRequest) => {
  chain = chain.then(() => handle(msg));
});

async function handle(msg: { seq: number } & WorkerRequest): Promise<void> {
  let reply: WorkerReply;
  try {
    const handler = handlers[msg.op] as (r: WorkerRequest) => unknown;
    const result = await handler(msg);
    reply = { seq: msg.seq, ok: true, result, tensors: tf.memory().numTensors };
  } catch (err) {
    const error =
      err instanceof EngineError ? { code: err.code, message: err.message } : { code: 'internal' as const, message: (err as Error)?.message ?? String(err) };
    reply = { seq: msg.seq, ok: false, error, tensors: tf.memory().numTensors };
  }
  port.postMessage(reply);
}
