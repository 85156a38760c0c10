// POST /classify: decode the JSON body (rows or base64 packed), validate with the engine's rules, queue.
import type { FastifyInstance } from 'fastify';
import type { RawClassifyCall } from '../../contract/classify.ts';
import { invalid } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { decodeBase64, decodeJsonRows, decodePacked } from '../decode-inputs.ts';
import { admission } from './admission.ts';
import { useBase64JsonParser } from './base64-json-parser.ts';
import { classifyBody, classifyResponse, errorResponses } from './schemas.ts';

const CLASSIFY_FIELDS = ['inputs', 'inputsBase64', 'dtype', 'shape', 'task', 'inference', 'topK'];

export function decodeClassifyBody(body: unknown): RawClassifyCall {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !CLASSIFY_FIELDS.includes(k));
  if (unknown !== undefined) throw invalid(`unknown field "${unknown}" (known: ${CLASSIFY_FIELDS.join(', ')})`);
  let decoded;
  if (b.inputsBase64 !== undefined) {
    if (b.inputs !== undefined) throw invalid('send either inputs or inputsBase64, not both');
    decoded = decodePacked(decodeBase64(b.inputsBase64, 'inputsBase64'), b.dtype, b.shape, 'inputsBase64', true);
  } else {
    if (b.dtype !== undefined || b.shape !== undefined) throw invalid('dtype and shape describe inputsBase64; with JSON inputs leave them out');
    if (b.inputs === undefined) throw invalid('inputs is required (or inputsBase64 with dtype and shape)');
    decoded = decodeJsonRows(b.inputs);
  }
  return { ...decoded, task: b.task, inference: b.inference, topK: b.topK };
}

export async function classifyRoute(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  useBase64JsonParser(app);
  app.post(
    '/classify',
    {
      onRequest: admission(ctx),
      schema: {
        summary: 'Classify a batch of examples, with a given task or with the task inferred',
        tags: ['inference'],
        body: classifyBody,
        response: { 200: classifyResponse, ...errorResponses(400, 404, 409, 413, 415, 503, 504) },
      },
    },
    async (request) => {
      const call = ctx.runtime.validate(decodeClassifyBody(request.body));
      const predictions = await ctx.runtime.classify(call, ctx.config.timeoutMs);
      return { predictions };
    },
  );
}
