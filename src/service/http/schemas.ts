// JSON Schemas of the REST API, for the OpenAPI document only: the server does not validate with them
// (app.ts turns schema validation off). Requests are decoded by the adapters and validated by the engine's
// one validator, so REST and gRPC refuse exactly the same things with the same messages.
import { DECIDE_FROM, DEFAULT_INFERENCE, INFERENCE_METHODS, OBJECTIVES } from '../../contract/classify.ts';
import { TASK_ID_PATTERN } from '../../contract/task.ts';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, TASK_VIEWS } from '../../core/task-page.ts';
const error = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string', example: 'invalid_argument' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

export const errorResponses = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { description: statusText(s), ...error }]));

function statusText(s: number): string {
  return (
    {
      400: 'Malformed request',
      401: 'Missing or wrong bearer token',
      403: 'Task management is disabled (no admin token configured)',
      404: 'Unknown task or route',
      409: 'Conflict with the current state',
      413: 'Body over the limit',
      415: 'Not JSON',
      503: 'Busy (queue full) or not ready; see Retry-After',
      504: 'The request missed its deadline',
    }[s] ?? 'Error'
  );
}

const inference = {
  type: 'object',
  description: 'How to infer the task when none is given.',
  additionalProperties: false,
  properties: {
    method: { type: 'string', enum: INFERENCE_METHODS, default: DEFAULT_INFERENCE.method },
    objective: { type: 'string', enum: OBJECTIVES, default: DEFAULT_INFERENCE.objective, description: '"superfluous" needs a model with s > l outputs' },
    decideFrom: {
      type: 'string',
      enum: DECIDE_FROM,
      default: DEFAULT_INFERENCE.decideFrom,
      description: 'first: the first example decides for the whole batch (the paper); batch: all examples together; each: every example on its own',
    },
  },
} as const;

export const classifyBody = {
  type: 'object',
  additionalProperties: false,
  description: 'Give either `inputs` (JSON rows) or `inputsBase64` with `dtype` and `shape` (compact binary form).',
  properties: {
    inputs: {
      type: 'array',
      description: 'Examples, each a flat array of the model\'s input size (MNIST family: 784 pixels in [0, 1]).',
      items: { type: 'array', items: { type: 'number' } },
    },
    inputsBase64: { type: 'string', format: 'byte', description: 'Row-major packed examples: little-endian float32, or uint8 (value / 255)' },
    dtype: { type: 'string', enum: ['float32', 'uint8'], default: 'float32' },
    shape: { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 2, maxItems: 2, description: '[examples, values per example]' },
    task: { type: 'string', description: 'Task id. Omit it to have the task inferred from the inputs.' },
    inference,
    topK: { type: 'integer', minimum: 0, description: 'Also return the k most probable labels (at most the number of classes)' },
  },
} as const;

const prediction = {
  type: 'object',
  properties: {
    label: { type: 'integer' },
    probabilities: { type: 'array', items: { type: 'number' }, description: 'Softmax over the real classes' },
    topK: { type: 'array', items: { type: 'object', properties: { label: { type: 'integer' }, probability: { type: 'number' } } } },
    task: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        inferred: { type: 'boolean' },
        confidence: { type: 'number', description: 'ν of the chosen task (1 when given)' },
        unknown: { type: 'boolean', description: 'No stored mask fits: k · max ν < 1 + ε' },
      },
    },
  },
} as const;

export const classifyResponse = {
  type: 'object',
  properties: { predictions: { type: 'array', items: prediction } },
} as const;

export const transform = {
  type: 'object',
  description: 'The data transform that defines the task: identity, permutation (output pixel i = input pixel permutation[i]), rotation (degrees) or split (classes).',
  properties: {
    kind: { type: 'string', enum: ['identity', 'permutation', 'rotation', 'split'] },
    seed: { type: 'integer' },
    permutation: { type: 'array', items: { type: 'integer' } },
    degrees: { type: 'number' },
    classes: { type: 'array', items: { type: 'integer' } },
  },
  required: ['kind'],
} as const;

export const task = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    addedAt: { type: 'string', format: 'date-time' },
    density: { type: 'number', description: 'Fraction of the mask bits that are 1' },
    transform,
  },
} as const;

export const taskListQuery = {
  type: 'object',
  properties: {
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: MAX_PAGE_SIZE,
      description: `Tasks per page (default ${DEFAULT_PAGE_SIZE} once paging). With limit or pageToken the answer is one page, in task-id order; with neither, every task in the order they were added.`,
    },
    pageToken: {
      type: 'string',
      description:
        'nextPageToken of the previous page, unchanged (opaque). It names a position in id order, not a snapshot: a task that exists during the whole listing appears exactly once; one added or removed meanwhile may or may not; none twice. Tokens stay valid across restarts and replicas.',
    },
    view: { type: 'string', enum: TASK_VIEWS, default: 'full', description: '"basic" leaves out each task\'s transform (784 numbers for a permutation task)' },
  },
} as const;

export const taskList = {
  type: 'object',
  properties: {
    tasks: { type: 'array', items: task },
    nextPageToken: { type: 'string', description: 'Present while more tasks follow: pass it as pageToken for the next page' },
  },
  required: ['tasks'],
} as const;

export const taskIdParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: TASK_ID_PATTERN.source } },
} as const;

export const putTaskBody = {
  type: 'object',
  additionalProperties: false,
  required: ['mask'],
  properties: {
    mask: {
      type: 'string',
      format: 'byte',
      description:
        'The packed mask, base64: ceil(P / 32) little-endian 32-bit words; weight w is bit (w mod 32) of word floor(w / 32), weights in the model\'s order (docs/model-format.md); bits past P are 0.',
    },
    name: { type: 'string', description: 'Defaults to the id' },
    description: { type: 'string' },
    transform,
  },
} as const;

export const bearer = [{ bearerAuth: [] }];
