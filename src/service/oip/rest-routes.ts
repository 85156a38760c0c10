import type { FastifyInstance } from 'fastify';
import type { Prediction, RawClassifyCall } from '../../contract/classify.ts';
import { invalid } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { OIP_MODEL, decodeOipInfer, oipModelMetadata, oipOutputs, requireOipModel } from './mapping.ts';
import { PACKAGE_VERSION } from '../version.ts';
import { type ErrorBody, handleErrors } from '../http/errors.ts';
import { admission } from '../http/admission.ts';

// The Open Inference Protocol (KServe v2) REST surface, for clients and gateways that speak it (Triton,
// KServe, Seldon): health, server and model metadata, and infer on the model "supsup" (mapping.ts, shared
// with the gRPC service). Errors follow OIP: `{"error": "<message>"}`, with the same statuses and headers as
// every other REST answer.
export function decodeOipRequest(body: unknown): { id?: string; raw: RawClassifyCall } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (b.id !== undefined && typeof b.id !== 'string') throw invalid('id must be a string');
  const p = (b.parameters ?? {}) as Record<string, unknown>;
  if (typeof p !== 'object' || Array.isArray(p)) throw invalid('parameters must be an object');
  if (!Array.isArray(b.inputs) || b.inputs.length !== 1) throw invalid('inputs must hold exactly one tensor: the batch of examples');
  const t = (b.inputs[0] ?? {}) as Record<string, unknown>;
  const data = Array.isArray(t.data) ? (t.data as unknown[]).flat(Infinity) : undefined;
  if (t.data !== undefined && !data) throw invalid('inputs[0].data must be an array of numbers (flat or nested, row-major)');
  return { id: b.id as string | undefined, raw: decodeOipInfer(p, t.datatype, t.shape, data) };
}

export function encodeOipResponse(id: string | undefined, predictions: Prediction[], inferred: boolean) {
  return {
    model_name: OIP_MODEL,
    ...(id !== undefined ? { id } : {}),
    parameters: { task_inferred: inferred },
    outputs: oipOutputs(predictions),
  };
}

/** OIP answers errors as `{"error": "<message>"}`. */
const oipErrorBody: ErrorBody = (_code, message) => ({ error: message });

const tags = ['oip'];

function readiness(ctx: ServiceContext, reply: { code(n: number): unknown }) {
  if (!ctx.health.ready) reply.code(503);
  return { ready: ctx.health.ready };
}

/** Server health and metadata: open even when an API token is set, like /healthz. */
export async function oipServerRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  handleErrors(app, ctx.config.bodyLimit, oipErrorBody);
  app.get('/v2/health/live', { schema: { tags } }, async (_req, reply) => {
    if (!ctx.health.live) reply.code(503);
    return { live: ctx.health.live };
  });
  app.get('/v2/health/ready', { schema: { tags } }, async (_req, reply) => readiness(ctx, reply));
  app.get('/v2', { schema: { tags } }, async () => ({ name: 'supsup', version: PACKAGE_VERSION, extensions: [] }));
}

/** The model's readiness, metadata and inference. */
export async function oipModelRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  handleErrors(app, ctx.config.bodyLimit, oipErrorBody);
  app.get<{ Params: { name: string } }>('/v2/models/:name/ready', { schema: { tags } }, async (req, reply) => {
    requireOipModel(req.params.name);
    return { name: OIP_MODEL, ...readiness(ctx, reply) };
  });
  app.get<{ Params: { name: string } }>('/v2/models/:name', { schema: { tags } }, async (req) => {
    requireOipModel(req.params.name);
    return oipModelMetadata(ctx.runtime.info.limits);
  });
  app.post<{ Params: { name: string } }>('/v2/models/:name/infer', { onRequest: admission(ctx), schema: { tags, summary: 'OIP inference; parameters.task picks the task (omit it to infer)' } }, async (req) => {
    requireOipModel(req.params.name);
    const { id, raw } = decodeOipRequest(req.body);
    const call = ctx.runtime.validate(raw);
    const predictions = await ctx.runtime.classify(call, ctx.config.timeoutMs);
    return encodeOipResponse(id, predictions, call.task === undefined);
  });
}
