import type { FastifyError, FastifyInstance } from 'fastify';
import type { RawClassifyCall } from '../../core/classify-request.ts';
import type { Prediction } from '../../core/engine.ts';
import { EngineError, invalid } from '../../core/engine-error.ts';
import type { ServiceContext } from '../context.ts';
import { PACKAGE_VERSION } from '../version.ts';
import { HTTP_STATUS, describeError } from './errors.ts';

/**
 * The Open Inference Protocol (KServe v2) REST surface, for clients and gateways that speak it (Triton,
 * KServe, Seldon): health, server and model metadata, and infer on the model "supsup". The task and the
 * inference options travel as request parameters (`task`, `method`, `objective`, `decide_from`); omit
 * `task` to have it inferred. Errors follow OIP: `{"error": "<message>"}`.
 */
export const OIP_MODEL = 'supsup';
const DATATYPES: Record<string, number> = { FP32: 1, FP64: 1, UINT8: 1 / 255 };
const PARAMETERS = ['task', 'method', 'objective', 'decide_from'];

export function decodeOipRequest(body: unknown): { id?: string; raw: RawClassifyCall } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.id !== undefined && typeof b.id !== 'string') throw invalid('id must be a string');
  const p = (b.parameters ?? {}) as Record<string, unknown>;
  if (typeof p !== 'object' || Array.isArray(p)) throw invalid('parameters must be an object');
  const unknown = Object.keys(p).find((k) => !PARAMETERS.includes(k));
  if (unknown !== undefined) throw invalid(`unknown parameter "${unknown}" (known: ${PARAMETERS.join(', ')})`);
  if (!Array.isArray(b.inputs) || b.inputs.length !== 1) throw invalid('inputs must hold exactly one tensor: the batch of examples');
  const t = b.inputs[0] as Record<string, unknown>;
  const scale = DATATYPES[t?.datatype as string];
  if (scale === undefined) throw invalid(`inputs[0].datatype must be one of ${Object.keys(DATATYPES).join(', ')}`);
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw invalid('inputs[0].shape must be [examples, values per example]');
  }
  const data = Array.isArray(t.data) ? (t.data as unknown[]).flat(Infinity) : undefined;
  if (!data) throw invalid('inputs[0].data must be an array of numbers (flat or nested, row-major)');
  if (data.length !== shape[0] * shape[1]) throw invalid(`inputs[0].data holds ${data.length} values, but shape [${shape.join(', ')}] needs ${shape[0] * shape[1]}`);
  const inputs = new Float32Array(data.length);
  data.forEach((v, i) => {
    if (typeof v !== 'number') throw invalid(`inputs[0].data[${i}] must be a number`);
    inputs[i] = v * scale;
  });
  const inference = Object.fromEntries(
    [['method', p.method], ['objective', p.objective], ['decideFrom', p.decide_from]].filter(([, v]) => v !== undefined),
  );
  return { id: b.id as string | undefined, raw: { inputs, batch: shape[0], task: p.task, inference } };
}

export function encodeOipResponse(id: string | undefined, predictions: Prediction[], inferred: boolean) {
  const n = predictions.length;
  const classes = predictions[0]?.probabilities.length ?? 0;
  return {
    model_name: OIP_MODEL,
    ...(id !== undefined ? { id } : {}),
    parameters: { task_inferred: inferred },
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [n, classes], data: predictions.flatMap((p) => p.probabilities) },
      { name: 'label', datatype: 'INT64', shape: [n], data: predictions.map((p) => p.label) },
      { name: 'task', datatype: 'BYTES', shape: [n], data: predictions.map((p) => p.task.id) },
      { name: 'task_confidence', datatype: 'FP32', shape: [n], data: predictions.map((p) => p.task.confidence) },
      { name: 'task_unknown', datatype: 'BOOL', shape: [n], data: predictions.map((p) => p.task.unknown) },
    ],
  };
}

export async function oipRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { code, message } = describeError(error, ctx.config.bodyLimit);
    request.errorCode = code;
    return reply.code(HTTP_STATUS[code]).send({ error: message });
  });
  const tags = ['oip'];
  const model = (name: string) => {
    if (name !== OIP_MODEL) throw new EngineError('not_found', `unknown model "${name}" (this server serves "${OIP_MODEL}")`);
  };
  const readiness = (reply: { code(n: number): unknown }) => {
    if (!ctx.health.ready) reply.code(503);
    return { ready: ctx.health.ready };
  };

  app.get('/v2/health/live', { schema: { tags } }, async () => ({ live: true }));
  app.get('/v2/health/ready', { schema: { tags } }, async (_req, reply) => readiness(reply));
  app.get('/v2', { schema: { tags } }, async () => ({ name: 'supsup', version: PACKAGE_VERSION, extensions: [] }));
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', { schema: { tags } }, async (req, reply) => {
    model(req.params.name);
    return { name: OIP_MODEL, ...readiness(reply) };
  });
  app.get<{ Params: { name: string } }>('/v2/models/:name', { schema: { tags } }, async (req) => {
    model(req.params.name);
    const { limits } = ctx.runtime.info;
    return {
      name: OIP_MODEL,
      platform: 'tensorflowjs_supsup',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, limits.inputSize] }],
      outputs: [
        { name: 'probabilities', datatype: 'FP32', shape: [-1, limits.classes] },
        { name: 'label', datatype: 'INT64', shape: [-1] },
        { name: 'task', datatype: 'BYTES', shape: [-1] },
        { name: 'task_confidence', datatype: 'FP32', shape: [-1] },
        { name: 'task_unknown', datatype: 'BOOL', shape: [-1] },
      ],
    };
  });
  app.post<{ Params: { name: string } }>('/v2/models/:name/infer', { schema: { tags, summary: 'OIP inference; parameters.task picks the task (omit it to infer)' } }, async (req) => {
    model(req.params.name);
    const { id, raw } = decodeOipRequest(req.body);
    const call = ctx.runtime.validate(raw);
    const predictions = await ctx.runtime.classify(call, ctx.config.timeoutMs);
    return encodeOipResponse(id, predictions, call.task === undefined);
  });
}
