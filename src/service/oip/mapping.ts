// The Open Inference Protocol (KServe v2) mapping, shared by its REST routes and its gRPC service: the one
// model "supsup", one input tensor [examples, values per example], the task and inference options as request
// parameters (`task`, omitted to infer it; `method`, `objective`, `decide_from`), and five output tensors.
// The transports only unwrap their envelopes; the engine's validator does the rest.
import { type ClassifyLimits, type Prediction, type RawClassifyCall, inferenceFromWire } from '../../contract/classify.ts';
import { SupsupError, invalid } from '../../contract/errors.ts';

export const OIP_MODEL = 'supsup';
export const OIP_PLATFORM = 'tensorflowjs_supsup';
const PARAMETERS = ['task', 'method', 'objective', 'decide_from'];
/**
 * The input datatypes: the factor that turns a value into the model's [0, 1] pixel scale, the element's size and
 * reader in the binary (raw) form, and the InferTensorContents field that carries it over gRPC.
 */
const INPUT_DATATYPES: Record<string, { scale: number; bytes: number; read: (b: Buffer, at: number) => number; contentsField: string }> = {
  FP32: { scale: 1, bytes: 4, read: (b, at) => b.readFloatLE(at), contentsField: 'fp32_contents' },
  FP64: { scale: 1, bytes: 8, read: (b, at) => b.readDoubleLE(at), contentsField: 'fp64_contents' },
  UINT8: { scale: 1 / 255, bytes: 1, read: (b, at) => b[at], contentsField: 'uint_contents' },
};

export type OipDatatype = 'FP32' | 'INT64' | 'BYTES' | 'BOOL';
export interface OipTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  data: number[] | string[] | boolean[];
}

export function requireOipModel(name: string): void {
  if (name !== OIP_MODEL) throw new SupsupError('not_found', `unknown model "${name}" (this server serves "${OIP_MODEL}")`);
}

/**
 * One infer request, from either transport, into the engine's raw call. `values` are the input's elements
 * (flat, row-major) or undefined when the request carried none.
 */
export function decodeOipInfer(parameters: Record<string, unknown>, datatype: unknown, shape: unknown, values: ArrayLike<unknown> | undefined): RawClassifyCall {
  const unknown = Object.keys(parameters).find((k) => !PARAMETERS.includes(k));
  if (unknown !== undefined) throw invalid(`unknown parameter "${unknown}" (known: ${PARAMETERS.join(', ')})`);
  const type = INPUT_DATATYPES[datatype as string];
  if (type === undefined) throw invalid(`inputs[0].datatype must be one of ${Object.keys(INPUT_DATATYPES).join(', ')}`);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid('inputs[0].shape must be [examples, values per example]');
  }
  if (!values) throw invalid('inputs[0] carries no data');
  const count = shape[0] * shape[1];
  if (values.length !== count) throw invalid(`inputs[0] holds ${values.length} values, but shape [${shape.join(', ')}] needs ${count}`);
  const inputs = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (typeof v !== 'number') throw invalid(`inputs[0] value ${i} must be a number`);
    inputs[i] = v * type.scale;
  }
  return { inputs, batch: shape[0], task: parameters.task, inference: inferenceFromWire(parameters) };
}

/** The elements of a raw (binary, little-endian) input of `datatype`; the datatype itself is checked later. */
export function rawInputValues(datatype: unknown, bytes: Buffer): number[] | undefined {
  const type = INPUT_DATATYPES[datatype as string];
  if (!type) return undefined;
  if (bytes.length % type.bytes !== 0) throw invalid(`raw input of ${bytes.length} bytes is not a whole number of ${datatype} elements`);
  return Array.from({ length: bytes.length / type.bytes }, (_, i) => type.read(bytes, i * type.bytes));
}

/** The elements of an input sent in InferTensorContents (gRPC), from the field of its datatype. */
export function contentsValues(datatype: unknown, contents: Record<string, unknown[]> | null | undefined): unknown[] | undefined {
  const type = INPUT_DATATYPES[datatype as string];
  return type && contents ? contents[type.contentsField] : undefined;
}

export function oipModelMetadata(limits: ClassifyLimits) {
  return {
    name: OIP_MODEL,
    platform: OIP_PLATFORM,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, limits.inputSize] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, limits.classes] },
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'task', datatype: 'BYTES', shape: [-1] },
      { name: 'task_confidence', datatype: 'FP32', shape: [-1] },
      { name: 'task_unknown', datatype: 'BOOL', shape: [-1] },
    ],
  };
}

export function oipOutputs(predictions: Prediction[]): OipTensor[] {
  const n = predictions.length;
  const classes = predictions[0]?.probabilities.length ?? 0;
  return [
    { name: 'probabilities', datatype: 'FP32', shape: [n, classes], data: predictions.flatMap((p) => p.probabilities) },
    { name: 'label', datatype: 'INT64', shape: [n], data: predictions.map((p) => p.label) },
    { name: 'task', datatype: 'BYTES', shape: [n], data: predictions.map((p) => p.task.id) },
    { name: 'task_confidence', datatype: 'FP32', shape: [n], data: predictions.map((p) => p.task.confidence) },
    { name: 'task_unknown', datatype: 'BOOL', shape: [n], data: predictions.map((p) => p.task.unknown) },
  ];
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
