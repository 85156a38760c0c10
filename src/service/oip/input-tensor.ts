// The model's one OIP input tensor, from either transport: its datatypes, the shapes it accepts, and the
// decoding of its elements into the engine's Float32Array. Every size is checked against the shape and the
// limits before any per-element work, so an oversized or mis-shaped tensor is refused in constant time.
import { type ClassifyLimits, checkBatchSize } from '../../contract/classify.ts';
import { invalid } from '../../contract/errors.ts';
import { float32FromLittleEndian } from '../../platform/byte-order.ts';

export const INPUT_NAME = 'x';

/**
 * The input datatypes: what a value is divided by to be on the model's [0, 1] pixel scale, the element's size
 * in the binary (raw) form, and the gRPC InferTensorContents field that carries it.
 */
export const INPUT_DATATYPES = {
  FP32: { divisor: 1, bytes: 4, contentsField: 'fp32_contents' },
  FP64: { divisor: 1, bytes: 8, contentsField: 'fp64_contents' },
  UINT8: { divisor: 255, bytes: 1, contentsField: 'uint_contents' },
} as const;
export type InputDatatype = keyof typeof INPUT_DATATYPES;

/** How a client learns the above: model metadata properties (OIP `properties`, strings). */
export function inputProperties(inputSize: number): Record<string, string> {
  const side = Math.sqrt(inputSize);
  const image = Number.isInteger(side) ? `, [N, ${side}, ${side}], [N, 1, ${side}, ${side}]` : '';
  return {
    input_datatypes: Object.keys(INPUT_DATATYPES).join(','),
    input_scaling: 'FP32 and FP64 values are pixels in [0, 1], used as given; UINT8 values are pixels 0..255, divided by 255',
    input_shapes: `[N, ${inputSize}]${image}: any shape whose dimensions after the first hold ${inputSize} values per example`,
  };
}

/** Where a tensor's elements came from: raw little-endian bytes (binary extension, raw_input_contents) or a list. */
export type TensorData = { raw: Uint8Array } | { values: ArrayLike<unknown> };

export interface InputTensor {
  name: unknown;
  datatype: unknown;
  shape: unknown;
  /** Undefined when the request carried no elements for it. */
  data: TensorData | undefined;
}

/** The input checked and decoded: flat examples on the model's scale, and how many. */
export function decodeInputTensor(t: InputTensor, limits: ClassifyLimits): { inputs: Float32Array; batch: number } {
  if (t.name !== INPUT_NAME) throw invalid(`inputs[0].name must be "${INPUT_NAME}" (the model's input), got ${JSON.stringify(t.name ?? null)}`);
  const datatype = t.datatype as InputDatatype;
  if (!Object.hasOwn(INPUT_DATATYPES, datatype)) throw invalid(`inputs[0].datatype must be one of ${Object.keys(INPUT_DATATYPES).join(', ')}`);
  const batch = checkShape(t.shape, limits);
  const count = batch * limits.inputSize;
  const type = INPUT_DATATYPES[datatype];
  if (!t.data) throw invalid('inputs[0] carries no data');
  if ('raw' in t.data) {
    const raw = t.data.raw;
    if (raw.byteLength !== count * type.bytes) {
      throw invalid(`inputs[0] holds ${raw.byteLength} bytes, but shape [${(t.shape as number[]).join(', ')}] of ${datatype} needs ${count * type.bytes}`);
    }
    return { inputs: fromRaw(raw, datatype, count), batch };
  }
  const values = t.data.values;
  if (values.length !== count) throw invalid(`inputs[0] holds ${values.length} values, but shape [${(t.shape as number[]).join(', ')}] needs ${count}`);
  const inputs = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const v = values[i];
    if (typeof v !== 'number') throw invalid(`inputs[0] value ${i} must be a number`);
    if (datatype === 'UINT8' && !(Number.isInteger(v) && v >= 0 && v <= 255)) throw invalid(`inputs[0] value ${i} is ${v}: UINT8 values are whole numbers 0..255`);
    inputs[i] = v / type.divisor;
  }
  return { inputs, batch };
}

/**
 * [N, ...] with the dimensions after the first holding one example's values; N within the batch limit.
 * Returns N.
 */
function checkShape(shape: unknown, limits: ClassifyLimits): number {
  if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid(`inputs[0].shape must be [examples, ...] with ${limits.inputSize} values per example, e.g. [N, ${limits.inputSize}]`);
  }
  const [batch, ...example] = shape as number[];
  const perExample = example.reduce((a, d) => a * d, 1);
  if (perExample !== limits.inputSize) {
    throw invalid(`each example must have ${limits.inputSize} values; shape [${shape.join(', ')}] gives ${perExample} per example`);
  }
  checkBatchSize(batch, limits);
  return batch;
}

function fromRaw(raw: Uint8Array, datatype: InputDatatype, count: number): Float32Array {
  if (datatype === 'FP32') return float32FromLittleEndian(raw);
  const inputs = new Float32Array(count);
  if (datatype === 'UINT8') {
    for (let i = 0; i < count; i++) inputs[i] = raw[i] / 255;
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) inputs[i] = view.getFloat64(8 * i, true);
  }
  return inputs;
}
