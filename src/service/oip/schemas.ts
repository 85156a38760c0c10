// JSON Schemas of the OIP REST routes, for the OpenAPI document only (the server does not validate with them:
// mapping.ts does). Written from the Open Inference Protocol's REST specification, with supsup's model filled in.
import { INPUT_DATATYPES, INPUT_NAME } from './input-tensor.ts';
import { OUTPUTS } from './models.ts';

const error = {
  description: 'Error, in the OIP form',
  type: 'object',
  properties: { error: { type: 'string' } },
  required: ['error'],
} as const;

export const oipErrors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, error]));

const parameters = { type: 'object', additionalProperties: true } as const;
const tensorData = { type: 'array', description: 'Elements, flat or nested, row-major', items: {} } as const;

export const serverMetadata = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array', items: { type: 'string' } } },
  required: ['name', 'version', 'extensions'],
} as const;

const tensorMetadata = {
  type: 'object',
  properties: { name: { type: 'string' }, datatype: { type: 'string' }, shape: { type: 'array', items: { type: 'integer' } } },
  required: ['name', 'datatype', 'shape'],
} as const;

export const modelMetadata = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    versions: { type: 'array', items: { type: 'string' } },
    platform: { type: 'string' },
    inputs: { type: 'array', items: tensorMetadata },
    outputs: { type: 'array', items: tensorMetadata },
    properties: { type: 'object', additionalProperties: { type: 'string' }, description: 'Accepted input datatypes and shapes, UINT8 scaling, how the task is chosen' },
  },
  required: ['name', 'platform', 'versions', 'inputs', 'outputs'],
} as const;

export const readiness = { type: 'object', properties: { name: { type: 'string' }, ready: { type: 'boolean' } }, required: ['ready'] } as const;

export const inferenceRequest = {
  type: 'object',
  description:
    'With the binary tensor data extension the body is this JSON, of Inference-Header-Content-Length bytes, followed by the input\'s raw little-endian bytes (input parameters.binary_data_size).',
  properties: {
    id: { type: 'string' },
    parameters: {
      type: 'object',
      description: 'task (omit to infer; fixed by a task model), method, objective, decide_from, binary_data_output (bool), timeout (µs), priority (accepted, FIFO); others are ignored',
      additionalProperties: true,
    },
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 1,
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: [INPUT_NAME] },
          shape: { type: 'array', items: { type: 'integer' }, description: '[N, 784], [N, 28, 28] or [N, 1, 28, 28]: 784 values per example' },
          datatype: { type: 'string', enum: Object.keys(INPUT_DATATYPES), description: 'UINT8 values are divided by 255' },
          parameters: { type: 'object', properties: { binary_data_size: { type: 'integer' } }, additionalProperties: true },
          data: tensorData,
        },
        required: ['name', 'shape', 'datatype'],
      },
    },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: { name: { type: 'string', enum: OUTPUTS }, parameters: { type: 'object', properties: { binary_data: { type: 'boolean' } }, additionalProperties: true } },
        required: ['name'],
      },
    },
  },
  required: ['inputs'],
} as const;

export const inferenceResponse = {
  type: 'object',
  description:
    'When an output is asked for in binary (binary_data, binary_data_output), the body is this JSON, of Inference-Header-Content-Length bytes, then those outputs\' bytes (output parameters.binary_data_size), as application/octet-stream.',
  properties: {
    model_name: { type: 'string' },
    model_version: { type: 'string' },
    id: { type: 'string' },
    parameters: { type: 'object', properties: { task_inferred: { type: 'boolean' } } },
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string', enum: OUTPUTS },
          shape: { type: 'array', items: { type: 'integer' } },
          datatype: { type: 'string' },
          parameters,
          data: tensorData,
        },
        required: ['name', 'shape', 'datatype'],
      },
    },
  },
  required: ['model_name', 'outputs'],
} as const;

/** Triton's extensions (model-config.ts, statistics.ts, repository.ts). */
export const modelConfig = {
  type: 'object',
  description: "Triton's ModelConfig (model_config.proto) in its JSON form",
  properties: { name: { type: 'string' }, platform: { type: 'string' }, backend: { type: 'string' }, max_batch_size: { type: 'integer' }, input: { type: 'array' }, output: { type: 'array' } },
  additionalProperties: true,
} as const;

const durationStat = { type: 'object', properties: { count: { type: 'integer' }, ns: { type: 'integer' } }, required: ['count', 'ns'] } as const;

export const modelStatistics = {
  type: 'object',
  properties: {
    model_stats: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          last_inference: { type: 'integer', description: 'ms since the epoch; 0: never' },
          inference_count: { type: 'integer', description: 'examples served' },
          execution_count: { type: 'integer', description: 'forward passes (calls merged into one pass count once)' },
          inference_stats: { type: 'object', additionalProperties: durationStat, description: 'success, fail, queue, compute_input, compute_infer, compute_output, cache_hit, cache_miss' },
          batch_stats: { type: 'array', items: { type: 'object', properties: { batch_size: { type: 'integer' } }, additionalProperties: durationStat } },
        },
      },
    },
  },
  required: ['model_stats'],
} as const;

export const repositoryIndexRequest = { type: 'object', properties: { ready: { type: 'boolean', description: 'only models ready for inference' } } } as const;

export const repositoryIndexResponse = {
  type: 'array',
  items: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' }, state: { type: 'string' }, reason: { type: 'string' } }, required: ['name', 'state'] },
} as const;
