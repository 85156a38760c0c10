// A classification call, from any protocol to the engine and back: the call and its options, the one
// validator that checks them (adapters decode their wire format into a RawClassifyCall and hand it here;
// nothing else checks these fields), the limits it checks against, and the predictions that answer it.
import { invalid } from './errors.ts';

/** How task inference scores a mask: the entropy H of the outputs, or G over the superfluous neurons. */
export type Objective = 'entropy' | 'superfluous';
export const OBJECTIVES: readonly Objective[] = ['entropy', 'superfluous'];
/** One gradient over the superposition of all masks, or a binary search over halves. */
export type InferenceMethod = 'one-shot' | 'binary';
export const INFERENCE_METHODS: readonly InferenceMethod[] = ['one-shot', 'binary'];
export type DecideFrom = 'first' | 'batch' | 'each';
export const DECIDE_FROM: readonly DecideFrom[] = ['first', 'batch', 'each'];

export interface InferenceOptions {
  method: InferenceMethod;
  objective: Objective;
  /** `first`: decide from example 0 and apply to the batch (the paper); `batch`: the mean objective; `each`: per example. */
  decideFrom: DecideFrom;
  /** Unknown-task threshold: unknown when k · max ν < 1 + ε, ν = softmax(-∂obj/∂α). */
  epsilon: number;
  /**
   * One-shot decisions made from one example: the gradient's top `rerank` masks are re-ranked by the fit of
   * their exact forwards (core/one-example.ts); 1 keeps the gradient's top-1 (the paper). Set by the operator
   * (`serve --rerank`), like ε; not an option of the call.
   */
  rerank: number;
}

/** The paper's unknown-task threshold ε, used unless the model or the operator sets another. */
export const DEFAULT_EPSILON = 1 / 8;
/**
 * Masks re-ranked from one example unless the operator sets another number: the same 4 whose exact forwards the
 * one-example unknown rule scores (so a model with that rule pays nothing more). On the served 250-task model it
 * lifts task id from the first example from 98.60% to 99.60%, GN from 94.23% to 95.11% (docs/results.md, issue 10).
 */
export const DEFAULT_RERANK = 4;
/** Most examples in one call (and in one merged forward pass) unless configured otherwise. */
export const DEFAULT_MAX_BATCH = 1024;

/**
 * Defaults: one-shot H, deciding from the whole batch. The paper decides from the first example; on our
 * 250-task PermutedMNIST model the whole batch gives task id 100% (vs 99.6%) and flags 98.8% of batches from
 * unseen tasks as unknown with none of the known ones (vs 51% and 1.5%), for about 1.6x the time (docs/results.md).
 */
export const DEFAULT_INFERENCE: InferenceOptions = { method: 'one-shot', objective: 'entropy', decideFrom: 'batch', epsilon: DEFAULT_EPSILON, rerank: DEFAULT_RERANK };

export interface RawClassifyCall {
  /** Flattened examples, row-major. */
  inputs: Float32Array;
  /** Number of examples. */
  batch: number;
  task?: unknown;
  inference?: unknown;
  topK?: unknown;
}

export interface ClassifyCall {
  inputs: Float32Array;
  batch: number;
  task?: string;
  inference: InferenceOptions;
  topK: number;
  /**
   * Set only by the batcher when it merges inferred-task calls (runtime/merge.ts): the batch sizes of the merged
   * calls, in order. The task is then decided per segment, each from its own examples, in one pass over the bank.
   */
  segments?: number[];
}

export interface ClassifyLimits {
  inputSize: number;
  classes: number;
  maxBatch: number;
  /** Whether the model has superfluous outputs (s > l), which the "superfluous" objective needs. */
  hasSuperfluous: boolean;
  epsilon: number;
  /** InferenceOptions.rerank of every call. */
  rerank: number;
}

export interface Prediction {
  label: number;
  /** Softmax over the l real classes. */
  probabilities: number[];
  topK?: { label: number; probability: number }[];
  task: { id: string; inferred: boolean; confidence: number; unknown: boolean };
}

const INFERENCE_KEYS = ['method', 'objective', 'decideFrom'];

/**
 * The inference options of the protocols that spell them in snake case (gRPC, OIP parameters), as the
 * validator reads them: only the options that were given.
 */
export function inferenceFromWire(o: { method?: unknown; objective?: unknown; decide_from?: unknown }): Record<string, unknown> {
  return Object.fromEntries([['method', o.method], ['objective', o.objective], ['decideFrom', o.decide_from]].filter(([, v]) => v !== undefined));
}

/** The example count's rule, also checked by decoders before they decode (so an oversized call costs nothing). */
export function checkBatchSize(batch: number, limits: ClassifyLimits): void {
  if (!Number.isInteger(batch) || batch < 1) throw invalid('inputs must hold at least one example');
  if (batch > limits.maxBatch) throw invalid(`batch of ${batch} examples is over the limit of ${limits.maxBatch}`);
}

export function validateClassifyCall(raw: RawClassifyCall, limits: ClassifyLimits): ClassifyCall {
  const { inputs, batch } = raw;
  checkBatchSize(batch, limits);
  if (inputs.length !== batch * limits.inputSize) {
    throw invalid(`each example must have ${limits.inputSize} values; got ${inputs.length} values for ${batch} example(s)`);
  }
  for (let i = 0; i < inputs.length; i++) {
    if (!Number.isFinite(inputs[i])) {
      throw invalid(`inputs[${Math.floor(i / limits.inputSize)}][${i % limits.inputSize}] is not a finite number`);
    }
  }
  let task: string | undefined;
  if (raw.task !== undefined && raw.task !== null && raw.task !== '') {
    if (typeof raw.task !== 'string') throw invalid('task must be a string task id');
    task = raw.task;
  }
  return { inputs, batch, task, inference: parseInference(raw.inference, limits), topK: parseTopK(raw.topK, limits.classes) };
}

function parseInference(raw: unknown, limits: ClassifyLimits): InferenceOptions {
  const options: InferenceOptions = { ...DEFAULT_INFERENCE, epsilon: limits.epsilon, rerank: limits.rerank };
  if (raw === undefined || raw === null) return options;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('inference must be an object');
  const r = raw as Record<string, unknown>;
  const unknownKey = Object.keys(r).find((k) => !INFERENCE_KEYS.includes(k));
  if (unknownKey !== undefined) throw invalid(`unknown inference option "${unknownKey}" (known: ${INFERENCE_KEYS.join(', ')})`);
  if (r.method !== undefined) options.method = oneOf('inference.method', r.method, INFERENCE_METHODS);
  if (r.objective !== undefined) options.objective = oneOf('inference.objective', r.objective, OBJECTIVES);
  if (r.decideFrom !== undefined) options.decideFrom = oneOf('inference.decideFrom', r.decideFrom, DECIDE_FROM);
  if (options.objective === 'superfluous' && !limits.hasSuperfluous) {
    throw invalid('inference.objective "superfluous" needs a model with superfluous outputs (s > l); this one has none');
  }
  return options;
}

function parseTopK(raw: unknown, classes: number): number {
  if (raw === undefined || raw === null) return 0;
  if (!Number.isInteger(raw) || (raw as number) < 0 || (raw as number) > classes) {
    throw invalid(`topK must be an integer from 0 to ${classes}`);
  }
  return raw as number;
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalid(`${name} must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  }
  return value as T;
}
