// The engine worker: owns the Engine and the model directory, one request at a time. TensorFlow.js on
// wasm computes synchronously, so it runs here, off the main thread that answers /healthz and /metrics.
// Task changes are durable first (model store), then applied to the engine; a failure leaves both as they were.
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { liveTensors, tfjsDeferred, withTfjs } from '../core/tfjs.ts';
import { Engine } from '../core/engine.ts';
import { type ClassifyCall, type ClassifyLimits, validateClassifyCall } from '../contract/classify.ts';
import { SupsupError, modelNotLoaded } from '../contract/errors.ts';
import { taskInfo } from '../contract/task.ts';
import { appendTask, readManifest, removeTask } from '../model/model-store.ts';
import { isHopfieldModel } from '../model/hopfield-model.ts';
import { HopfieldWorkerModel } from './hopfield-worker.ts';
import { collectGarbage } from './collect-garbage.ts';
import { openEngine } from './open-engine.ts';
import { packTasks } from './packed-tasks.ts';
import type { OpenedModel, SharedBank, WorkerReply, WorkerRequest, WorkerResults } from './worker-protocol.ts';

let engine: Engine | undefined;
let dir = '';
/** Set instead of `engine` when the directory holds a HopSupSup model. */
let hopfield: HopfieldWorkerModel | undefined;
/** What warmUp needs of the open model. */
let opened: { limits: ClassifyLimits; firstTask: string | undefined } | undefined;

const handlers: { [K in WorkerRequest['op']]: (r: Extract<WorkerRequest, { op: K }>) => Promise<WorkerResults[K]> | WorkerResults[K] } = {
  async open(r) {
    if (await isHopfieldModel(r.dir)) {
      const { opened: model, info } = await HopfieldWorkerModel.open(r.dir, r);
      hopfield?.engine.dispose();
      hopfield = model;
      opened = { limits: info.limits, firstTask: info.tasks[0]?.id };
      return { ...info, tasks: packTasks(info.tasks) };
    }
    const loaded = await openEngine(r.dir, { backend: r.backend, kernels: r.kernels, maxBatch: r.maxBatch, epsilon: r.epsilon, rerank: r.rerank, deferTfjs: true });
    const { architecture, seed, normalization, tasks } = loaded.manifest;
    engine?.dispose();
    engine = loaded.engine;
    dir = r.dir;
    opened = { limits: engine.limits, firstTask: tasks[0]?.id };
    return {
      dir,
      architecture,
      seed,
      normalization,
      limits: engine.limits,
      epsilonSource: loaded.epsilonSource,
      tasks: packTasks(tasks.map(taskInfo)),
      maskBankBytes: engine.maskBankBytes,
      backend: loaded.backend,
      kernels: loaded.kernels,
      sharedBank: sharedBank(engine),
    } satisfies OpenedModel;
  },

  async classify(r) {
    const start = performance.now();
    // A pass that needs TensorFlow.js starts it first (once), where the engine opened without it.
    const predictions = await withTfjs(() => classify(r.call));
    return { predictions, seconds: (performance.now() - start) / 1000 };
  },

  /**
   * The main thread sends this right behind `open`, so the passes run while it reads open's reply (thousands of
   * tasks with their transforms). Two examples where allowed: a HopSupSup model normalises over the batch and
   * refuses a batch of one. Where the engine opened without TensorFlow.js, only the given-task pass runs (from the
   * bits): the first call that needs tfjs starts it (withTfjs), so no other request waits for it, and a model served
   * only from the bits never loads it.
   */
  async warmUp() {
    try {
      if (!opened) throw modelNotLoaded();
      const { limits, firstTask } = opened;
      if (firstTask === undefined) return;
      const batch = Math.min(2, limits.maxBatch);
      const zeros = () => ({ inputs: new Float32Array(batch * limits.inputSize), batch });
      await withTfjs(() => classify(validateClassifyCall({ ...zeros(), task: firstTask }, limits)));
      if (tfjsDeferred()) {
        // Inferred passes wait for tfjs, but the tables they read can be made without it: right after this reply,
        // so readiness does not wait for them (~0.1 s at k = 2500); an inferred call that comes first makes them itself.
        setImmediate(() => engine?.prepareInference());
        return;
      }
      classify(validateClassifyCall(zeros(), limits));
      // One example alone, as most inferred calls come.
      if (!hopfield) classify(validateClassifyCall({ inputs: new Float32Array(limits.inputSize), batch: 1 }, limits));
    } finally {
      // What loading left behind (file buffers, the parsed manifest) is collected once the reply is out: this thread
      // allocates little between inferred calls, so V8 would leave it resident for minutes (docs/benchmarks.md, stop 23).
      setImmediate(collectGarbage);
    }
  },

  async addTask(r) {
    if (hopfield) return hopfield.addTask(r.task, r.mask);
    const e = requireEngine();
    const entry = await appendTask(dir, r.task, r.mask);
    const bankBytes = e.maskBankBytes;
    let slot: number;
    try {
      slot = e.addTask(entry.id, r.mask).slot;
    } catch (err) {
      await removeTask(dir, entry.id).catch(() => undefined);
      throw err;
    }
    // The bank grew into a new buffer: collect this thread's wrappers of the old one once the reply is out.
    if (e.maskBankBytes !== bankBytes) setImmediate(collectGarbage);
    const bank = e.givenTaskBank;
    return { task: taskInfo(entry), maskBankBytes: e.maskBankBytes, shared: bank ? { bank, slot } : undefined };
  },

  async removeTask(r) {
    if (hopfield) return hopfield.removeTask(r.id);
    const e = requireEngine();
    e.requireTask(r.id);
    let warning: string | undefined;
    try {
      await removeTask(dir, r.id);
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

function classify(call: ClassifyCall) {
  return hopfield ? hopfield.engine.classify(call) : requireEngine().classify(call);
}

function sharedBank(e: Engine): SharedBank | undefined {
  const bank = e.givenTaskBank;
  return bank ? { bank, slots: Object.fromEntries(e.tasks().map((t) => [t.id, t.slot])) } : undefined;
}

function requireEngine(): Engine {
  if (!engine) throw modelNotLoaded();
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
    reply = { seq: msg.seq, ok: true, result, tensors: liveTensors() };
  } catch (err) {
    const error =
      err instanceof SupsupError ? { code: err.code, message: err.message } : { code: 'internal' as const, message: err instanceof Error ? err.message : String(err) };
    reply = { seq: msg.seq, ok: false, error, tensors: liveTensors() };
  }
  port.postMessage(reply);
}
