import { OBJECTIVES, type Objective } from './objectives.ts';
import { DECIDE_FROM, DEFAULT_INFERENCE, type DecideFrom, INFERENCE_METHODS, type InferenceMethod, type InferenceOptions } from './task-inference.ts';
import { invalid } from './engine-error.ts';

/**
 * The one validator of a classification call. Adapters decode their wire format (JSON arrays, base64,
 * protobuf bytes) into a RawClassifyCall and hand it here; nothing else checks these fields.
 */
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
}

export interface ClassifyLimits {
  inputSize: number;
  classes: number;
  maxBatch: number;
  /** Whether the model has superfluous outputs (s > l), which the "superfluous" objective needs. */
  hasSuperfluous: boolean;
  epsilon: number;
}

const INFERENCE_KEYS = ['method', 'objective', 'decideFrom'];

export function validateClassifyCall(raw: RawClassifyCall, limits: ClassifyLimits): ClassifyCall {
  const { inputs, batch } = raw;
  if (!Number.isInteger(batch) || batch < 1) throw invalid('inputs must hold at least one example');
  if (batch > limits.maxBatch) throw invalid(`batch of ${batch} examples is over the limit of ${limits.maxBatch}`);
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
  const options: InferenceOptions = { ...DEFAULT_INFERENCE, epsilon: limits.epsilon };
  if (raw === undefined || raw === null) return options;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalid('inference must be an object');
  const r = raw as Record<string, unknown>;
  const unknownKey = Object.keys(r).find((k) => !INFERENCE_KEYS.includes(k));
  if (unknownKey !== undefined) throw invalid(`unknown inference option "${unknownKey}" (known: ${INFERENCE_KEYS.join(', ')})`);
  if (r.method !== undefined) options.method = oneOf<InferenceMethod>('inference.method', r.method, INFERENCE_METHODS);
  if (r.objective !== undefined) options.objective = oneOf<Objective>('inference.objective', r.objective, OBJECTIVES);
  if (r.decideFrom !== undefined) options.decideFrom = oneOf<DecideFrom>('inference.decideFrom', r.decideFrom, DECIDE_FROM);
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
