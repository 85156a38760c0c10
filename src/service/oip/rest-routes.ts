import type { FastifyInstance, FastifyReply } from 'fastify';
import { invalid } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { BinarySlicer, HEADER_LENGTH, binaryBody, inflateBody, splitBinaryBody } from './binary-data.ts';
import type { InputTensor } from './input-tensor.ts';
import { type OipInferPlan, type OipInferRequest, type RequestedOutput, oipOutputs, planOipInfer, rawOutput } from './mapping.ts';
import { OIP_VERSION, type OipModel, oipModelMetadata, resolveOipModel, serviceModels } from './models.ts';
import {
  inferenceRequest,
  inferenceResponse,
  modelConfig,
  modelMetadata,
  modelStatistics,
  oipErrors,
  readiness as readinessSchema,
  repositoryIndexRequest,
  repositoryIndexResponse,
  serverMetadata,
} from './schemas.ts';
import { oipModelConfig } from './model-config.ts';
import { loadModel, modelNames, repositoryIndex, unloadModel } from './repository.ts';
import { oipServerMetadata } from './server-metadata.ts';
import { inferRecorded } from './statistics.ts';
import { type ErrorBody, handleErrors, sendError } from '../http/errors.ts';
import type { Prediction } from '../../contract/classify.ts';
import { admission } from '../http/admission.ts';

// The Open Inference Protocol (KServe v2) REST surface, for clients and gateways that speak it (Triton,
// KServe, Seldon): health, server and model metadata, and infer, on every model models.ts names, with and
// without `/versions/{v}`, JSON or with the binary tensor data extension (binary-data.ts). Requests are
// checked by the core shared with gRPC (mapping.ts). Every /v2 error is OIP's `{"error": "<message>"}`, with
// the same statuses and headers as every other REST answer.

/** The REST envelope (JSON header and binary part) into the transport-neutral request. */
export function decodeOipRequest(body: Buffer, headerLength: string | string[] | undefined): { id?: string; request: OipInferRequest } {
  const { json, binary } = splitBinaryBody(body, headerLength);
  const b = object(json, 'the body');
  if (b.id !== undefined && typeof b.id !== 'string') throw invalid('id must be a string');
  if (!Array.isArray(b.inputs)) throw invalid('inputs must be an array of tensors');
  if (b.outputs !== undefined && !Array.isArray(b.outputs)) throw invalid('outputs must be an array');
  const slicer = new BinarySlicer(binary);
  const inputs = b.inputs.map((raw, i): InputTensor => {
    const t = object(raw, `inputs[${i}]`);
    const p = object(t.parameters ?? {}, `inputs[${i}].parameters`);
    if (p.binary_data_size !== undefined) {
      if (t.data !== undefined) throw invalid(`inputs[${i}] has both data and binary_data_size: send one`);
      return { name: t.name, datatype: t.datatype, shape: t.shape, data: { raw: slicer.take(p.binary_data_size, `inputs[${i}]`) } };
    }
    if (t.data !== undefined && !Array.isArray(t.data)) throw invalid(`inputs[${i}].data must be an array of numbers (flat or nested, row-major)`);
    return { name: t.name, datatype: t.datatype, shape: t.shape, data: t.data === undefined ? undefined : { values: (t.data as unknown[]).flat(Infinity) } };
  });
  slicer.finish();
  const outputs = (b.outputs as unknown[] | undefined)?.map((raw, i): RequestedOutput => {
    const o = object(raw, `outputs[${i}]`);
    return { name: o.name, parameters: object(o.parameters ?? {}, `outputs[${i}].parameters`) };
  });
  return { id: b.id as string | undefined, request: { parameters: object(b.parameters ?? {}, 'parameters'), inputs, outputs } };
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** The answer's JSON, or its JSON header and binary part when any output goes in binary. */
export function encodeOipResponse(model: OipModel, id: string | undefined, predictions: Prediction[], plan: OipInferPlan): { json: object } | { body: Buffer; headerLength: number } {
  const tensors = oipOutputs(predictions, plan.outputs);
  const raw = tensors.map((t, i) => (plan.outputs[i].binary ? rawOutput(t) : undefined));
  const header = {
    model_name: model.name,
    model_version: OIP_VERSION,
    ...(id !== undefined ? { id } : {}),
    parameters: { task_inferred: plan.call.task === undefined },
    outputs: tensors.map(({ data, ...t }, i) => (raw[i] ? { ...t, parameters: { binary_data_size: raw[i].length } } : { ...t, data })),
  };
  const binary = raw.filter((b) => b !== undefined);
  return binary.length === 0 ? { json: header } : binaryBody(header, binary);
}

/** OIP answers errors as `{"error": "<message>"}`. */
const oipErrorBody: ErrorBody = (_code, message) => ({ error: message });

const tags = ['oip'];

function readiness(ctx: ServiceContext, reply: { code(n: number): unknown }) {
  if (!ctx.health.ready) reply.code(503);
  return { ready: ctx.health.ready };
}

/** Server health and metadata, and OIP's error form for unknown /v2 routes: open even when an API token is set, like /healthz. */
export async function oipServerRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  handleErrors(app, ctx.config.bodyLimit, oipErrorBody);
  app.get('/v2/health/live', { schema: { tags, response: { 200: { type: 'object', properties: { live: { type: 'boolean' } } }, 503: { type: 'object', properties: { live: { type: 'boolean' } } } } } }, async (_req, reply) => {
    if (!ctx.health.live) reply.code(503);
    return { live: ctx.health.live };
  });
  app.get('/v2/health/ready', { schema: { tags, response: { 200: readinessSchema, 503: readinessSchema } } }, async (_req, reply) => readiness(ctx, reply));
  app.get('/v2', { schema: { tags, response: { 200: serverMetadata } } }, async () => oipServerMetadata());
  await app.register(
    async (v2) => {
      v2.setNotFoundHandler((request, reply) => sendError(request, reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`, oipErrorBody));
    },
    { prefix: '/v2' },
  );
}

type ModelParams = { Params: { name: string; version?: string } };

/** Each model's readiness, metadata and inference, at /v2/models/{name} and /v2/models/{name}/versions/{version}. */
export async function oipModelRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  handleErrors(app, ctx.config.bodyLimit, oipErrorBody);
  // OIP bodies are JSON, or JSON followed by binary tensors, whatever the content type says (Triton's client sends none).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.bodyLimit }, (req, body, done) => {
    try {
      done(null, inflateBody(body as Buffer, req.headers['content-encoding'], ctx.config.bodyLimit));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  const source = serviceModels(ctx);
  const model = (p: ModelParams['Params']) => resolveOipModel(source, p.name, p.version);
  const params = (versioned: boolean) => ({
    type: 'object',
    properties: { name: { type: 'string', description: `"${ctx.config.modelName}", or a task id (the model of that one task)` }, ...(versioned ? { version: { type: 'string', enum: [OIP_VERSION] } } : {}) },
  });

  for (const prefix of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    const versioned = prefix.includes(':version');
    app.get<ModelParams>(`${prefix}/ready`, { schema: { tags, params: params(versioned), response: { 200: readinessSchema, 503: readinessSchema, ...oipErrors(404) } } }, async (req, reply) => ({
      name: model(req.params).name,
      ...readiness(ctx, reply),
    }));
    app.get<ModelParams>(prefix, { schema: { tags, params: params(versioned), response: { 200: modelMetadata, ...oipErrors(404) } } }, async (req) =>
      oipModelMetadata(model(req.params), ctx.runtime.info.limits),
    );
    app.get<ModelParams>(`${prefix}/config`, { schema: { tags, summary: "Triton's model configuration extension", params: params(versioned), response: { 200: modelConfig, ...oipErrors(404) } } }, async (req) =>
      oipModelConfig(model(req.params), ctx.runtime.info.limits, ctx.config),
    );
    app.get<ModelParams>(`${prefix}/stats`, { schema: { tags, summary: "Triton's statistics extension: this model's", params: params(versioned), response: { 200: modelStatistics, ...oipErrors(404) } } }, async (req) =>
      ctx.metrics.modelStatistics.report([model(req.params).name]),
    );
    app.post<ModelParams>(
      `${prefix}/infer`,
      {
        onRequest: admission(ctx),
        schema: {
          tags,
          summary: 'OIP inference: JSON, or the binary tensor data extension; the main model takes parameters.task (omit it to infer), a task model is that task',
          consumes: ['application/json', 'application/octet-stream'],
          params: params(versioned),
          body: inferenceRequest,
          response: { 200: inferenceResponse, ...oipErrors(400, 401, 404, 413, 503, 504) },
        },
      },
      async (req, reply: FastifyReply) => {
        const m = model(req.params);
        let id: string | undefined;
        const plan = () => {
          const decoded = decodeOipRequest((req.body as Buffer | undefined) ?? Buffer.alloc(0), req.headers[HEADER_LENGTH]);
          id = decoded.id;
          return planOipInfer(decoded.request, m, ctx.runtime, ctx.config.timeoutMs);
        };
        const answer = await inferRecorded(ctx, m, plan, (predictions, planned) => encodeOipResponse(m, id, predictions, planned));
        if ('json' in answer) return answer.json;
        reply.header(HEADER_LENGTH, String(answer.headerLength)).type('application/octet-stream');
        return answer.body;
      },
    );
  }
  app.get('/v2/models/stats', { schema: { tags, summary: "Triton's statistics extension: every model's", response: { 200: modelStatistics } } }, async () =>
    ctx.metrics.modelStatistics.report(modelNames(ctx)),
  );
  app.post('/v2/repository/index', { schema: { tags, summary: "Triton's model repository extension: the models", body: repositoryIndexRequest, response: { 200: repositoryIndexResponse, ...oipErrors(400) } } }, async (req) => {
    const body = (req.body as Buffer | undefined)?.toString().trim();
    const b = object(body ? parseJson(body) : {}, 'the body');
    if (b.ready !== undefined && typeof b.ready !== 'boolean') throw invalid('ready must be a boolean');
    return repositoryIndex(ctx, b.ready === true);
  });
  const repositoryModel = { type: 'object', properties: { name: { type: 'string' } } };
  app.post<ModelParams>('/v2/repository/models/:name/load', { schema: { tags, summary: 'Succeeds for a model that exists: every model here is loaded with the server', params: repositoryModel, response: oipErrors(404) } }, async (req, reply) => {
    loadModel(ctx, req.params.name);
    return reply.send({});
  });
  app.post<ModelParams>('/v2/repository/models/:name/unload', { schema: { tags, summary: 'Refused (409): models live as long as the server; DELETE /tasks/{id} removes a task', params: repositoryModel, response: oipErrors(404, 409) } }, async (req) =>
    unloadModel(ctx, req.params.name),
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalid('the body must be JSON');
  }
}
