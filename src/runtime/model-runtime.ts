// The runtime the servers talk to: owns the engine worker (and through it the Engine and the model
// directory), the batching queue in front of it, and a main-thread mirror of what is loaded (limits, tasks)
// so requests are validated, and unknown tasks refused, before they are queued.
// Readiness: the model is loaded and a warm-up pass ran. If the worker dies, what it held fails at once
// (503), new requests are refused until a new worker has loaded the model directory (the durable state),
// and failed restarts are retried with doubling delays; after --max-engine-restarts consecutive failures
// the runtime gives up ('failed'), so liveness fails and the orchestrator replaces the process.
import type { BackendPreference, KernelPreference } from '../platform/preferences.ts';
import { type ClassifyCall, type Prediction, type RawClassifyCall, validateClassifyCall } from '../contract/classify.ts';
import { SupsupError, modelNotLoaded, noTasks, taskNotFound } from '../contract/errors.ts';
import type { TaskInfo, TaskSpec } from '../contract/task.ts';
import { Admission } from './admission.ts';
import { type BatchObserver, Batcher, type PassTiming } from './batcher.ts';
import { EngineClient } from './engine-client.ts';
import { type Opening, type StartedEngine, open } from './engine-start.ts';
import { InlineGiven } from './inline-given.ts';
import { collectGarbage } from './collect-garbage.ts';
import { unpackTasks } from './packed-tasks.ts';
import type { ModelInfo } from './worker-protocol.ts';
import { sortedById } from '../core/task-page.ts';

export interface RuntimeOptions {
  /** The model directory. */
  dir: string;
  backend: BackendPreference;
  kernels: KernelPreference;
  /** Most examples in one request, and in one merged forward pass. */
  maxBatch: number;
  /** Unknown-task threshold ε: a batch is flagged unknown when k · max ν < 1 + ε. Unset: the model's own, else 1/8. */
  epsilon?: number;
  /** Masks re-ranked by exact forwards for a one-shot decision from one example (InferenceOptions.rerank). Unset: DEFAULT_RERANK. */
  rerank?: number;
  /** Most requests waiting for the engine; past it: 503 / RESOURCE_EXHAUSTED. */
  maxQueue: number;
  /** How long a request that finds the queue full waits, unread, for a place before it is refused (0: at once). */
  admissionWaitMs: number;
  /** How long the first request of a mergeable group waits for company before its pass starts. */
  maxWaitMs: number;
  /** Consecutive failed restarts of a dead engine worker before giving up (0: give up when it dies). */
  maxEngineRestarts: number;
  /** Wait before the first restart; doubled after each failed one, up to MAX_RESTART_DELAY_MS. */
  engineRestartDelayMs: number;
}

/** starting: loading the model; ready: serving; restarting: the worker died and a new one is on its way; failed: gave up restarting. */
export type EngineState = 'starting' | 'ready' | 'restarting' | 'failed' | 'closed';

export interface RuntimeObserver extends BatchObserver {
  inference(seconds: number, mode: 'given' | 'inferred'): void;
  predictions(predictions: Prediction[]): void;
  /** A new engine worker was started in place of one that died (or failed to load). */
  engineRestart(): void;
}

export interface RuntimeLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const MAX_RESTART_DELAY_MS = 30_000;

export class ModelRuntime {
  private client: EngineClient;
  private model: ModelInfo | undefined;
  private readonly taskMap = new Map<string, TaskInfo>();
  /** taskMap's tasks sorted by id (the order of task pages), rebuilt after a change. */
  private sortedTasks: TaskInfo[] | undefined;
  private readonly batcher: Batcher;
  /** Small given-task calls run on this thread, on the worker's shared bank (null where it does not share one). */
  private inline: InlineGiven | null = null;
  private engineState: EngineState = 'starting';
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly admission: Admission;
  private readonly readyListeners: (() => void)[] = [];
  /** The open and warm-up requests a started engine sent before this runtime existed; the first load() takes their answers. */
  private opening: Opening | undefined;

  private constructor(
    private readonly options: RuntimeOptions,
    private readonly log: RuntimeLog,
    private readonly observer?: RuntimeObserver,
    started?: StartedEngine,
  ) {
    if (started) {
      started.onExit = (code) => this.onWorkerExit(code);
      this.client = started.client;
      this.opening = started.takeOpening();
    } else {
      this.client = this.startWorker();
    }
    this.admission = new Admission({ maxQueue: options.maxQueue, waitMs: options.admissionWaitMs }, () => this.batcher.running);
    // A pass that starts frees the places of the requests it takes.
    const batches: BatchObserver = {
      queueWait: (seconds) => observer?.queueWait(seconds),
      batch: (examples) => {
        observer?.batch(examples);
        this.admission.wake();
      },
    };
    this.batcher = new Batcher(options, (call) => this.runPass(call), batches);
  }

  /** Starts the engine worker (or adopts `started`); the model is not loaded until `load()`. */
  static create(options: RuntimeOptions, log: RuntimeLog, observer?: RuntimeObserver, started?: StartedEngine): ModelRuntime {
    return new ModelRuntime(options, log, observer, started);
  }

  /** create + load; on failure the worker is stopped and the error rethrown. */
  static async open(options: RuntimeOptions, log: RuntimeLog, observer?: RuntimeObserver): Promise<ModelRuntime> {
    const runtime = new ModelRuntime(options, log, observer);
    try {
      await runtime.load();
    } catch (e) {
      await runtime.close();
      throw e;
    }
    return runtime;
  }

  /** Whether a model is loaded (it may still be warming up). */
  get loaded(): boolean {
    return this.model !== undefined;
  }

  get ready(): boolean {
    return this.engineState === 'ready';
  }

  get state(): EngineState {
    return this.engineState;
  }

  /** Called whenever `state` changed (loaded, worker lost, gave up, closed). */
  onReadyChange(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  /** The loaded model; throws `unavailable` before it is loaded. */
  get info(): ModelInfo {
    if (!this.model) throw modelNotLoaded();
    return this.model;
  }

  get taskCount(): number {
    return this.taskMap.size;
  }

  get maskBankBytes(): number {
    return this.model?.maskBankBytes ?? 0;
  }

  get queueDepth(): number {
    return this.batcher.depth;
  }

  get tensors(): number {
    return this.client.tensors;
  }

  tasks(): TaskInfo[] {
    return [...this.taskMap.values()];
  }

  /** Every task sorted by id (task-page.ts), kept until the next change. */
  tasksById(): readonly TaskInfo[] {
    this.sortedTasks ??= sortedById(this.taskMap.values());
    return this.sortedTasks;
  }

  findTask(id: string): TaskInfo | undefined {
    return this.taskMap.get(id);
  }

  /** The task, or not_found. */
  requireTask(id: string): TaskInfo {
    const task = this.taskMap.get(id);
    if (!task) throw taskNotFound(id);
    return task;
  }

  /** The engine's validator with the loaded model's limits, plus the engine's task rules, so a call the engine would refuse is refused before it queues. */
  validate(raw: RawClassifyCall): ClassifyCall {
    const call = validateClassifyCall(raw, this.info.limits);
    if (call.task !== undefined) this.requireTask(call.task);
    else if (this.taskMap.size === 0) throw noTasks();
    return call;
  }

  /**
   * Admission (admission.ts), for the protocol adapters to ask before they read a request's body: resolves with
   * the release, to call once the request is answered, when a place in the queue is free now or within
   * --admission-wait-ms; rejects with resource_exhausted when none came, and with unavailable while no engine
   * worker is up. `signal`: the client went away while waiting.
   */
  admit(signal?: AbortSignal): Promise<() => void> {
    try {
      this.requireUp();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.admission.enter(signal, () => this.requireUp());
  }

  /** Requests waiting, unread, for a place in the queue. */
  get admissionWaiting(): number {
    return this.admission.waiting;
  }

  /** Queues a validated call; resolves with one prediction per example (and fills `timing`, when given). */
  classify(call: ClassifyCall, timeoutMs: number, timing?: PassTiming): Promise<Prediction[]> {
    this.requireUp();
    if (this.inline?.takes(call)) return this.classifyInline(this.inline, call, timing);
    return this.batcher.submit(call, timeoutMs, timing);
  }

  /** A small given-task call, answered on this thread without queueing (inline-given.ts). */
  private classifyInline(inline: InlineGiven, call: ClassifyCall, timing?: PassTiming): Promise<Prediction[]> {
    const start = performance.now();
    let predictions: Prediction[];
    try {
      predictions = inline.classify(call);
    } catch (e) {
      return Promise.reject(e);
    }
    const computeMs = performance.now() - start;
    if (timing) Object.assign(timing, { pass: this.batcher.newPass(), examples: call.batch, queueMs: 0, computeMs });
    this.observer?.queueWait(0);
    this.observer?.batch(call.batch);
    this.observer?.inference(computeMs / 1000, 'given');
    this.observer?.predictions(predictions);
    return Promise.resolve(predictions);
  }

  /** Throws `unavailable` unless a worker with the model loaded is up. */
  private requireUp(): void {
    if (this.engineState === 'ready') return;
    const why: Record<Exclude<EngineState, 'ready'>, string> = {
      starting: modelNotLoaded().message,
      restarting: 'the engine worker stopped and is being restarted; retry shortly',
      failed: `the engine worker could not be restarted (${this.options.maxEngineRestarts} attempts); this server waits to be replaced`,
      closed: 'the server is shutting down',
    };
    throw new SupsupError('unavailable', why[this.engineState]);
  }

  /** Durable first (the worker writes the model directory), then live; resolves once both are done. */
  async addTask(task: TaskSpec, packedMask: Uint32Array): Promise<TaskInfo> {
    const mask = transferable(packedMask);
    const r = await this.client.request({ op: 'addTask', task, mask }, [mask.buffer as ArrayBuffer]);
    this.taskMap.set(r.task.id, r.task);
    this.sortedTasks = undefined;
    this.info.maskBankBytes = r.maskBankBytes;
    if (r.shared) this.inline?.added(r.task.id, r.shared);
    this.log.info({ task: r.task.id, tasks: this.taskMap.size }, 'task added');
    return r.task;
  }

  async removeTask(id: string): Promise<void> {
    const inline = this.inline, slot = inline?.removing(id);
    let r;
    try {
      r = await this.client.request({ op: 'removeTask', id });
    } catch (e) {
      if (slot !== undefined && this.inline === inline) inline!.restore(id, slot);
      throw e;
    }
    this.taskMap.delete(id);
    this.sortedTasks = undefined;
    this.info.maskBankBytes = r.maskBankBytes;
    if (r.warning) this.log.warn({ task: id }, r.warning);
    this.log.info({ task: id, tasks: this.taskMap.size }, 'task removed');
  }

  /** Drain: queued requests run now, without waiting for company. Resolves when the queue is empty. */
  async drain(): Promise<void> {
    this.batcher.flush();
    await this.batcher.idle();
  }

  async close(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.setState('closed');
    await this.client.terminate();
  }

  private startWorker(): EngineClient {
    return new EngineClient((code) => this.onWorkerExit(code));
  }

  /** Loads the model directory in the worker, then runs the warm-up pass; ready after that. */
  async load(): Promise<void> {
    const { model: opened, warmUp } = this.opening ?? open(this.client, this.options);
    this.opening = undefined;
    const { sharedBank, tasks, ...rest } = await opened;
    const model = { ...rest, tasks: unpackTasks(tasks) };
    this.model = model;
    this.inline = InlineGiven.for(model, sharedBank);
    this.taskMap.clear();
    this.sortedTasks = undefined;
    for (const t of model.tasks) this.taskMap.set(t.id, t);
    await warmUp;
    if (this.engineState !== 'closed') this.setState('ready');
    // What loading left behind (the open reply's task list, thousands of transforms) is garbage now, and a thread
    // that serves only inferred calls allocates too little for V8 to collect it soon: measured, it stayed resident.
    setImmediate(collectGarbage);
  }

  private setState(state: EngineState): void {
    if (state === this.engineState) return;
    this.engineState = state;
    for (const l of this.readyListeners) l();
  }

  private async runPass(call: ClassifyCall): Promise<Prediction[]> {
    this.requireUp(); // what was queued when the worker died fails here, never waiting on the dead worker
    const inputs = transferable(call.inputs);
    const r = await this.client.request({ op: 'classify', call: { ...call, inputs } }, [inputs.buffer as ArrayBuffer]);
    this.observer?.inference(r.seconds, call.task === undefined ? 'inferred' : 'given');
    this.observer?.predictions(r.predictions);
    return r.predictions;
  }

  /** Only a worker that was serving is restarted here: one that dies while loading fails its load(), and whoever loaded it decides. */
  private onWorkerExit(code: number): void {
    if (this.engineState !== 'ready') return;
    this.log.error({ exitCode: code }, 'the engine worker stopped unexpectedly; restarting it from the model directory');
    this.setState('restarting');
    this.restartOrGiveUp(0);
  }

  private restartOrGiveUp(failures: number): void {
    if (failures >= this.options.maxEngineRestarts) {
      this.log.error({ failures, maxEngineRestarts: this.options.maxEngineRestarts }, 'giving up on the engine worker: liveness fails so that this process is replaced');
      this.setState('failed');
      return;
    }
    const delay = Math.min(this.options.engineRestartDelayMs * 2 ** failures, MAX_RESTART_DELAY_MS);
    this.restartTimer = setTimeout(() => void this.restart(failures), delay);
    this.restartTimer.unref();
  }

  private async restart(failures: number): Promise<void> {
    if (this.engineState !== 'restarting') return;
    this.observer?.engineRestart();
    this.client = this.startWorker();
    try {
      await this.load();
      this.log.info({ tasks: this.taskMap.size, attempt: failures + 1 }, 'engine worker restarted; ready again');
    } catch (e) {
      if (this.engineState !== 'restarting') return;
      await this.client.terminate();
      this.log.error({ err: (e as Error).message, attempt: failures + 1 }, 'restarting the engine worker failed');
      this.restartOrGiveUp(failures + 1);
    }
  }
}

/** The array itself if it owns its whole buffer (so the buffer can move to the worker), else a copy that does. */
function transferable<T extends Float32Array | Uint32Array>(a: T): T {
  return a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : (a.slice() as T);
}
