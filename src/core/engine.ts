import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, weightCount } from './architecture.ts';
import { generateBaseNetwork } from './base-network.ts';
import { type ClassifyCall, type ClassifyLimits, type RawClassifyCall, validateClassifyCall } from './classify-request.ts';
import { EngineError } from './engine-error.ts';
import { type MaskKernels } from './kernels/mask-kernels.ts';
import { forward } from './mlp.ts';
import { paddingBitsSet } from './mask-bank.ts';
import { SupermaskNetwork } from './supermask-network.ts';
import { type TaskDecision, inferTasks } from './task-inference.ts';

/**
 * The engine: one frozen base network, the mask bank, and the classify API that REST, gRPC and the CLI
 * all call. Tasks are named by string ids; the bank only knows slots.
 */
export interface Normalization {
  mean: number;
  std: number;
}

export interface EngineConfig {
  architecture: Architecture;
  seed: number;
  normalization: Normalization;
  kernels: MaskKernels;
  expectedTasks?: number;
  maskedCacheSize?: number;
  maxBatch?: number;
  epsilon?: number;
}

export interface TaskEntry<M> {
  id: string;
  slot: number;
  meta: M;
}

export interface Prediction {
  label: number;
  /** Softmax over the l real classes. */
  probabilities: number[];
  topK?: { label: number; probability: number }[];
  task: { id: string; inferred: boolean; confidence: number; unknown: boolean };
}

export const TASK_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export class Engine<M = unknown> {
  readonly architecture: Architecture;
  readonly normalization: Normalization;
  readonly limits: ClassifyLimits;
  private readonly net: SupermaskNetwork;
  private readonly byId = new Map<string, TaskEntry<M>>();
  private readonly idBySlot: string[] = [];

  constructor(config: EngineConfig) {
    this.architecture = config.architecture;
    this.normalization = config.normalization;
    if (!(config.normalization.std > 0) || !Number.isFinite(config.normalization.mean)) {
      throw new Error('normalization needs a finite mean and a positive std');
    }
    this.net = new SupermaskNetwork(generateBaseNetwork(config.architecture, config.seed), config.kernels, config);
    this.limits = {
      inputSize: config.architecture.inputSize,
      classes: config.architecture.classes,
      maxBatch: config.maxBatch ?? 1024,
      hasSuperfluous: config.architecture.outputs > config.architecture.classes,
      epsilon: config.epsilon ?? 1 / 8,
    };
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

  /** Bytes of the packed mask bank. */
  get maskBankBytes(): number {
    return this.net.bank.residentBytes;
  }

  tasks(): TaskEntry<M>[] {
    return Array.from(this.net.bank.occupiedSlots(), (slot) => this.byId.get(this.idBySlot[slot])!);
  }

  task(id: string): TaskEntry<M> | undefined {
    return this.byId.get(id);
  }

  mask(id: string): Uint32Array {
    return this.net.bank.get(this.requireTask(id).slot);
  }

  addTask(id: string, mask: Uint32Array, meta: M): TaskEntry<M> {
    if (!TASK_ID_PATTERN.test(id)) throw new EngineError('invalid_argument', `task id "${id}" must match ${TASK_ID_PATTERN}`);
    if (this.byId.has(id)) throw new EngineError('already_exists', `task "${id}" already exists`);
    if (!(mask instanceof Uint32Array) || mask.length !== this.net.words) {
      throw new EngineError('invalid_argument', `a mask for this model has ${this.net.words} 32-bit words, got ${mask.length}`);
    }
    if (paddingBitsSet(mask, this.weightCount)) {
      throw new EngineError('invalid_argument', `the mask sets bits past the model's ${this.weightCount} weights`);
    }
    const slot = this.net.addMask(mask);
    const entry = { id, slot, meta };
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
    const { mean, std } = this.normalization;
    const x = tf.tidy(() => tf.div(tf.sub(tf.tensor2d(call.inputs, [call.batch, this.limits.inputSize]), mean), std) as tf.Tensor2D);
    try {
      const decisions = this.decide(call, x);
      const predictions: Prediction[] = new Array(call.batch);
      for (const [slot, rows] of groupBySlot(decisions)) {
        const probabilities = this.probabilities(slot, x, rows);
        rows.forEach((row, i) => {
          const d = decisions[row];
          const task = { id: this.idBySlot[slot], inferred: call.task === undefined, confidence: d.confidence, unknown: d.unknown };
          predictions[row] = prediction(probabilities.subarray(i * this.limits.classes, (i + 1) * this.limits.classes), call.topK, task);
        });
      }
      return predictions;
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    this.net.dispose();
  }

  private decide(call: ClassifyCall, x: tf.Tensor2D): TaskDecision[] {
    if (call.task !== undefined) {
      const slot = this.requireTask(call.task).slot;
      return new Array(call.batch).fill({ slot, confidence: 1, unknown: false });
    }
    if (this.byId.size === 0) throw new EngineError('failed_precondition', 'the model has no tasks: add one before classifying');
    return inferTasks(this.net, x, call.inference);
  }

  /** Softmax over the l real classes for the given rows under one slot's mask. */
  private probabilities(slot: number, x: tf.Tensor2D, rows: number[]): Float32Array {
    const layers = this.net.masked(slot);
    return tf.tidy(() => {
      const input = rows.length === x.shape[0] ? x : tf.gather(x, rows);
      const logits = forward(layers.weights, input);
      const real = tf.slice(logits, [0, 0], [-1, this.limits.classes]);
      return tf.softmax(real).dataSync() as Float32Array;
    });
  }

  private requireTask(id: string): TaskEntry<M> {
    const entry = this.byId.get(id);
    if (!entry) throw new EngineError('not_found', `task "${id}" does not exist`);
    return entry;
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
