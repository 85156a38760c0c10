// The engine: one frozen base network, the mask bank, and the classify API that REST, gRPC and the CLI
// all call. Tasks are named by string ids; the bank only knows slots.
import { tf, tfjsBackend } from './tfjs.ts';
import { type ClassifyCall, type ClassifyLimits, DEFAULT_EPSILON, DEFAULT_MAX_BATCH, DEFAULT_RERANK, type Prediction, type RawClassifyCall, validateClassifyCall } from '../contract/classify.ts';
import { invalid, taskExists, taskNotFound } from '../contract/errors.ts';
import type { Architecture, ModelSpec, Normalization } from '../contract/model.ts';
import { checkTaskId } from '../contract/task.ts';
import { weightCount } from './architecture.ts';
import { generateBaseNetwork } from './base-network.ts';
import { type ForwardBits, probabilitiesFromBits, type SignedBase } from './kernels/forward-bits.ts';
import { GivenTaskPass, normalizeInto } from './given-task-pass.ts';
import { type MaskKernels } from './kernels/mask-kernels.ts';
import { paddingBitsSet } from './mask-bank.ts';
import { SupermaskNetwork } from './supermask-network.ts';
import type { OneExampleCheck } from './one-example.ts';
import { inferTasks, type TaskDecision } from './task-inference.ts';
import { fitScoreFor, fitsOf, ONE_EXAMPLE_CANDIDATES, type OneExampleRule } from './unknown-score.ts';

export interface EngineConfig extends ModelSpec {
  kernels: MaskKernels;
  /** Bank capacity to allocate up front. */
  expectedTasks?: number;
  maxBatch?: number;
  epsilon?: number;
  /** The model's calibrated rule for a task decided from one example; without it, k · max ν < 1 + ε there too. */
  oneExample?: OneExampleRule;
  /** Masks re-ranked by exact forwards for a one-shot decision from one example (InferenceOptions.rerank). */
  rerank?: number;
}

/** Where a task's mask sits in the bank. */
export interface EngineTask {
  id: string;
  slot: number;
}

export class Engine {
  readonly architecture: Architecture;
  readonly normalization: Normalization;
  readonly limits: ClassifyLimits;
  private readonly net: SupermaskNetwork;
  private readonly byId = new Map<string, EngineTask>();
  private readonly idBySlot: string[] = [];
  /** Given tasks straight from the bits (native kernels on a CPU backend); else tfjs builds W ⊙ M^t. */
  private readonly fromBits: { forward: ForwardBits; base: SignedBase } | null;
  /** A whole call with a given task, from the bits (with fromBits). */
  private readonly given: GivenTaskPass | null;
  private readonly oneExample: OneExampleRule | undefined;

  constructor(config: EngineConfig) {
    this.architecture = config.architecture;
    this.normalization = config.normalization;
    if (!(config.normalization.std > 0) || !Number.isFinite(config.normalization.mean)) {
      throw invalid('normalization needs a finite mean and a positive std');
    }
    this.net = new SupermaskNetwork(generateBaseNetwork(config.architecture, config.seed), config.kernels, config.expectedTasks);
    const forward = config.kernels.forwardBits;
    this.fromBits = forward && tfjsBackend() !== 'tensorflow' ? { forward, base: this.net.signed } : null;
    this.given = this.fromBits && new GivenTaskPass(this.fromBits.forward, this.fromBits.base, config.normalization, config.architecture.classes, config.kernels.normalize);
    this.limits = {
      inputSize: config.architecture.inputSize,
      classes: config.architecture.classes,
      maxBatch: config.maxBatch ?? DEFAULT_MAX_BATCH,
      hasSuperfluous: config.architecture.outputs > config.architecture.classes,
      epsilon: config.epsilon ?? DEFAULT_EPSILON,
      rerank: config.rerank ?? DEFAULT_RERANK,
    };
    if (!Number.isInteger(this.limits.rerank) || this.limits.rerank < 1) throw invalid(`rerank must be a whole number >= 1, got ${this.limits.rerank}`);
    if (config.oneExample && config.oneExample.score !== fitScoreFor(config.architecture.outputs, config.architecture.classes)) {
      throw invalid(`the one-example unknown rule scores by ${config.oneExample.score}, which this architecture does not use`);
    }
    this.oneExample = config.oneExample;
  }

  get kernelsName(): string {
    return this.net.kernels.name;
  }

  /** P: weights per task mask. */
  get weightCount(): number {
    return weightCount(this.architecture);
  }

  get maskWords(): number {
    return this.net.words;
  }

  get taskCount(): number {
    return this.byId.size;
  }

  /**
   * The bank a given-task pass reads, where that pass runs from the bits (null where tfjs builds W ⊙ M^t). Shared
   * memory, valid until an addTask grows the bank: the serving runtime runs small given-task calls on it from the
   * main thread (runtime/inline-given.ts).
   */
  get givenTaskBank(): Uint32Array | null {
    return this.given ? this.net.bank.raw : null;
  }

  /** Bytes of the packed mask bank. */
  get maskBankBytes(): number {
    return this.net.bank.residentBytes;
  }

  /** Set bits of each task's mask by id, counted in one pass of the kernels over the bank (a loader's density check). */
  setBitCounts(): (id: string) => number {
    const perSlot = this.net.setBitsPerSlot();
    return (id) => perSlot[this.requireTask(id).slot];
  }

  tasks(): EngineTask[] {
    return Array.from(this.net.bank.occupiedSlots(), (slot) => this.byId.get(this.idBySlot[slot])!);
  }

  task(id: string): EngineTask | undefined {
    return this.byId.get(id);
  }

  /** The task, or not_found. */
  requireTask(id: string): EngineTask {
    const entry = this.byId.get(id);
    if (!entry) throw taskNotFound(id);
    return entry;
  }

  addTask(id: string, mask: Uint32Array): EngineTask {
    checkTaskId(id);
    if (this.byId.has(id)) throw taskExists(id);
    if (!(mask instanceof Uint32Array) || mask.length !== this.net.words) {
      throw invalid(`a mask for this model has ${this.net.words} 32-bit words, got ${mask.length}`);
    }
    if (paddingBitsSet(mask, this.weightCount)) throw invalid(`the mask sets bits past the model's ${this.weightCount} weights`);
    const slot = this.net.addMask(mask);
    const entry = { id, slot };
    this.byId.set(id, entry);
    this.idBySlot[slot] = id;
    return entry;
  }

  removeTask(id: string): void {
    const entry = this.requireTask(id);
    this.net.removeMask(entry.slot);
    this.byId.delete(id);
    delete this.idBySlot[entry.slot];
  }

  validate(raw: RawClassifyCall): ClassifyCall {
    return validateClassifyCall(raw, this.limits);
  }

  /** Classifies a validated call: with its given task, or with the task inferred from its inputs. */
  classify(call: ClassifyCall): Prediction[] {
    if (call.task !== undefined && this.given) {
      const p = this.given.probabilities(this.net.bank.raw, this.requireTask(call.task).slot, call.inputs, call.batch);
      return givenTaskPredictions(p, call, this.limits.classes);
    }
    // The tensor only where tfjs runs.
    const data = this.normalized(call.inputs);
    let tensor: tf.Tensor2D | undefined;
    const x = () => (tensor ??= tf.tensor2d(data, [call.batch, this.limits.inputSize]));
    try {
      const decisions = this.decide(call, data, x);
      const predictions: Prediction[] = new Array(call.batch);
      for (const [slot, rows] of groupBySlot(decisions)) {
        const probabilities = this.probabilities(slot, data, x, rows);
        rows.forEach((row, i) => {
          const d = decisions[row];
          const task = { id: this.idBySlot[slot], inferred: call.task === undefined, confidence: d.confidence, unknown: d.unknown };
          predictions[row] = prediction(probabilities.subarray(i * this.limits.classes, (i + 1) * this.limits.classes), call.topK, task);
        });
      }
      return predictions;
    } finally {
      tensor?.dispose();
    }
  }

  /**
   * Each example deciding its task alone, with the best fit of its top `candidates` masks (unknown-score.ts):
   * what `supsup eval --calibrate-unknown` measures to choose the threshold. Needs at least two tasks.
   */
  oneExampleFits(call: ClassifyCall, candidates = ONE_EXAMPLE_CANDIDATES): { taskId: string; confidence: number; fit: number }[] {
    if (this.taskCount < 2) throw invalid('scoring a task against the others needs at least two tasks');
    const data = this.normalized(call.inputs);
    const x = tf.tensor2d(data, [call.batch, this.limits.inputSize]);
    try {
      const rule = { score: fitScoreFor(this.architecture.outputs, this.architecture.classes), candidates, threshold: -Infinity };
      const decisions = inferTasks(this.net, x, { ...call.inference, decideFrom: 'each' }, this.oneExampleCheck(data, rule));
      return decisions.map((d) => ({ taskId: this.idBySlot[d.slot], confidence: d.confidence, fit: d.fit! }));
    } finally {
      x.dispose();
    }
  }

  /** Brings the tables task inference reads (the input layer's column sums) up to date, ahead of the first request. */
  prepareInference(): void {
    this.net.prepareInference();
  }

  dispose(): void {
    this.net.dispose();
  }

  private decide(call: ClassifyCall, data: Float32Array, x: () => tf.Tensor2D): TaskDecision[] {
    if (call.task !== undefined) {
      const slot = this.requireTask(call.task).slot;
      return new Array(call.batch).fill({ slot, confidence: 1, unknown: false });
    }
    return inferTasks(this.net, x(), call.inference, this.oneExampleCheck(data, this.oneExample), call.segments);
  }

  /** Normalised in float32 as tfjs would: (x − mean) / std, each step rounded. */
  private normalized(inputs: Float32Array): Float32Array {
    return normalizeInto(inputs, this.normalization, new Float32Array(inputs.length));
  }

  /** Exact fits of the call's examples (`data`, normalised), scored as the model's one-example rule scores them. */
  private oneExampleCheck(data: Float32Array, rule?: OneExampleRule): OneExampleCheck {
    const { inputSize, outputs, classes } = this.architecture;
    const score = fitScoreFor(outputs, classes);
    return { rule, fits: (slots, row) => fitsOf(this.slotLogits(slots, data.subarray(row * inputSize, (row + 1) * inputSize)), outputs, classes, score) };
  }

  /** Logits of one normalised example under each of `slots` (slots × outputs): exact forwards, from the bits where possible. */
  private slotLogits(slots: Int32Array, example: Float32Array): Float32Array {
    const outputs = this.architecture.outputs;
    const out = new Float32Array(slots.length * outputs);
    slots.forEach((slot, i) => {
      const row = out.subarray(i * outputs, (i + 1) * outputs);
      if (this.fromBits) {
        const { forward, base } = this.fromBits;
        forward(this.net.bank.raw, base.words, slot, base.signs, base.sizes, base.scales, example, 1, row);
      } else {
        tf.tidy(() => row.set(this.net.taskLogits(slot, tf.tensor2d(example, [1, example.length])).dataSync()));
      }
    });
    return out;
  }

  /** Softmax over the l real classes for the given rows under one slot's mask. */
  private probabilities(slot: number, data: Float32Array, x: () => tf.Tensor2D, rows: number[]): Float32Array {
    if (this.fromBits) {
      const { forward, base } = this.fromBits;
      return probabilitiesFromBits(forward, base, this.net.bank.raw, slot, data, rows, this.limits.classes);
    }
    const all = x(); // made outside the tidy: later groups reuse it
    return tf.tidy(() => {
      const input = rows.length === all.shape[0] ? all : tf.gather(all, rows);
      const logits = this.net.taskLogits(slot, input);
      const real = tf.slice(logits, [0, 0], [-1, this.limits.classes]);
      return tf.softmax(real).dataSync() as Float32Array;
    });
  }
}

function groupBySlot(decisions: TaskDecision[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  decisions.forEach((d, row) => {
    const list = groups.get(d.slot);
    if (list) list.push(row);
    else groups.set(d.slot, [row]);
  });
  return groups;
}

/** The predictions of a call with a given task from its probabilities (batch × classes). */
export function givenTaskPredictions(p: Float32Array, call: ClassifyCall, classes: number): Prediction[] {
  const out: Prediction[] = new Array(call.batch);
  for (let r = 0; r < call.batch; r++) {
    out[r] = prediction(p.subarray(r * classes, (r + 1) * classes), call.topK, { id: call.task!, inferred: false, confidence: 1, unknown: false });
  }
  return out;
}

/** One example's prediction from its class probabilities (shared with HopfieldEngine). */
export function prediction(p: Float32Array, topK: number, task: Prediction['task']): Prediction {
  let label = 0;
  for (let c = 1; c < p.length; c++) if (p[c] > p[label]) label = c;
  const out: Prediction = { label, probabilities: Array.from(p), task };
  if (topK > 0) {
    out.topK = Array.from(p, (probability, l) => ({ label: l, probability }))
      .sort((a, b) => b.probability - a.probability || a.label - b.label)
      .slice(0, topK);
  }
  return out;
}
