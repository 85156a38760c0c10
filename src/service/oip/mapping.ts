// The Open Inference Protocol (KServe v2) core, shared by its REST routes and its gRPC service: an infer
// request, once each transport has unwrapped its envelope (OipInferRequest), is checked and turned into the
// engine's call, and predictions into output tensors. The one place both transports decode and validate.
//
// Request parameters: `task` (omit it to infer the task; a task model fixes it), `method`, `objective`,
// `decide_from` (inference options), and Triton's `binary_data_output` (REST: every output in binary form),
// `timeout` (microseconds: the request's deadline, when sooner than the server's) and `priority` (accepted;
// the one queue is first come, first served, so it orders nothing). Any other parameter is ignored, as the
// protocol allows.
import type { ClassifyCall, Prediction } from '../../contract/classify.ts';
import { inferenceFromWire } from '../../contract/classify.ts';
import { invalid } from '../../contract/errors.ts';
import type { ModelRuntime } from '../../runtime/model-runtime.ts';
import { type InputTensor, decodeInputTensor } from './input-tensor.ts';
import { type OipModel, OUTPUTS, type OutputName } from './models.ts';

export interface RequestedOutput {
  name: unknown;
  parameters: Record<string, unknown>;
}

/** An infer request from either transport; parameters as plain values. */
export interface OipInferRequest {
  parameters: Record<string, unknown>;
  inputs: InputTensor[];
  /** Omitted or empty: every output. */
  outputs?: RequestedOutput[];
}

export interface OipInferPlan {
  call: ClassifyCall;
  /** The outputs to return, in order, and whether each goes in binary form (REST's binary extension). */
  outputs: { name: OutputName; binary: boolean }[];
  timeoutMs: number;
}

/**
 * Checks the request (parameters, requested outputs, then the input's shape and size before its elements)
 * and validates the engine call. `timeoutMs` is the transport's own deadline.
 */
export function planOipInfer(r: OipInferRequest, model: OipModel, runtime: ModelRuntime, timeoutMs: number): OipInferPlan {
  const p = r.parameters;
  const binaryAll = optionalBool(p.binary_data_output, 'parameters.binary_data_output') ?? false;
  optionalCount(p.priority, 'parameters.priority');
  const timeoutUs = optionalCount(p.timeout, 'parameters.timeout') ?? 0;
  const outputs = requestedOutputs(r.outputs, binaryAll);
  if (r.inputs.length !== 1) throw invalid('inputs must hold exactly one tensor: the batch of examples');
  const { inputs, batch } = decodeInputTensor(r.inputs[0], runtime.info.limits);
  if (model.task !== undefined && p.task !== undefined && p.task !== model.task) {
    throw invalid(`parameters.task "${String(p.task)}" differs from the task of model "${model.name}"; omit it, or use the main model`);
  }
  const call = runtime.validate({ inputs, batch, task: model.task ?? p.task, inference: inferenceFromWire(p) });
  return { call, outputs, timeoutMs: timeoutUs > 0 ? Math.min(timeoutMs, Math.ceil(timeoutUs / 1000)) : timeoutMs };
}

function requestedOutputs(requested: RequestedOutput[] | undefined, binaryAll: boolean): OipInferPlan['outputs'] {
  if (!requested || requested.length === 0) return OUTPUTS.map((name) => ({ name, binary: binaryAll }));
  const seen = new Set<string>();
  return requested.map((o, i) => {
    const name = o.name as OutputName;
    if (!OUTPUTS.includes(name)) throw invalid(`unknown output ${JSON.stringify(o.name ?? null)} (outputs: ${OUTPUTS.join(', ')})`);
    if (seen.has(name)) throw invalid(`output "${name}" is requested twice`);
    seen.add(name);
    if (o.parameters.classification !== undefined) throw invalid('the classification extension is not offered: request "probabilities" or "label"');
    return { name, binary: optionalBool(o.parameters.binary_data, `outputs[${i}].parameters.binary_data`) ?? binaryAll };
  });
}

function optionalBool(v: unknown, where: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw invalid(`${where} must be a boolean`);
  return v;
}

function optionalCount(v: unknown, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw invalid(`${where} must be a whole number, 0 or more`);
  return v as number;
}

export type OipDatatype = 'FP32' | 'INT64' | 'BYTES' | 'BOOL';
export interface OipTensor {
  name: OutputName;
  datatype: OipDatatype;
  shape: number[];
  data: number[] | string[] | boolean[];
}

/** The requested output tensors, in the plan's order. */
export function oipOutputs(predictions: Prediction[], outputs: OipInferPlan['outputs']): OipTensor[] {
  return outputs.map(({ name }) => outputTensor(name, predictions));
}

function outputTensor(name: OutputName, predictions: Prediction[]): OipTensor {
  const n = predictions.length;
  switch (name) {
    case 'probabilities':
      return { name, datatype: 'FP32', shape: [n, predictions[0]?.probabilities.length ?? 0], data: predictions.flatMap((p) => p.probabilities) };
    case 'label':
      return { name, datatype: 'INT64', shape: [n], data: predictions.map((p) => p.label) };
    case 'task':
      return { name, datatype: 'BYTES', shape: [n], data: predictions.map((p) => p.task.id) };
    case 'task_confidence':
      return { name, datatype: 'FP32', shape: [n], data: predictions.map((p) => p.task.confidence) };
    case 'task_unknown':
      return { name, datatype: 'BOOL', shape: [n], data: predictions.map((p) => p.task.unknown) };
  }
}

/** A tensor's elements in the protocol's binary form (little-endian; BOOL one byte; BYTES length-prefixed). */
export function rawOutput(t: OipTensor): Buffer {
  switch (t.datatype) {
    case 'FP32': {
      const b = Buffer.alloc(4 * t.data.length);
      (t.data as number[]).forEach((v, i) => b.writeFloatLE(v, 4 * i));
      return b;
    }
    case 'INT64': {
      const b = Buffer.alloc(8 * t.data.length);
      (t.data as number[]).forEach((v, i) => b.writeBigInt64LE(BigInt(v), 8 * i));
      return b;
    }
    case 'BOOL':
      return Buffer.from((t.data as boolean[]).map((v) => (v ? 1 : 0)));
    case 'BYTES':
      return Buffer.concat(
        (t.data as string[]).flatMap((s) => {
          const bytes = Buffer.from(s, 'utf8');
          const length = Buffer.alloc(4);
          length.writeUInt32LE(bytes.length);
          return [length, bytes];
        }),
      );
  }
}
