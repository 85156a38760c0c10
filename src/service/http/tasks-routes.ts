import type { FastifyInstance } from 'fastify';
import { EngineError, invalid } from '../../core/engine-error.ts';
import type { NewTaskRequest } from '../../runtime/worker-protocol.ts';
import type { ServiceContext } from '../context.ts';
import { decodeBase64, decodeWords } from '../decode-inputs.ts';
import { adminAuth } from './admin-auth.ts';
import { bearer, errorResponses, putTaskBody, task, taskIdParams } from './schemas.ts';

/**
 * Task management: list and read freely; PUT (add) and DELETE only with the admin token. A PUT answers
 * 201 only once the mask is durable in the model directory and live in the engine; a task id is never
 * overwritten (DELETE it first).
 */
const PUT_FIELDS = ['mask', 'name', 'description', 'transform'];

export function decodeTaskBody(id: string, body: unknown): NewTaskRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !PUT_FIELDS.includes(k));
  if (unknown !== undefined) throw invalid(`unknown field "${unknown}" (known: ${PUT_FIELDS.join(', ')})`);
  if (b.mask === undefined) throw invalid('mask is required: the packed mask as base64');
  if (b.name !== undefined && typeof b.name !== 'string') throw invalid('name must be a string');
  if (b.description !== undefined && typeof b.description !== 'string') throw invalid('description must be a string');
  return {
    id,
    name: (b.name as string | undefined) ?? id,
    ...(b.description !== undefined ? { description: b.description as string } : {}),
    transform: (b.transform ?? { kind: 'identity' }) as NewTaskRequest['transform'],
    mask: decodeWords(decodeBase64(b.mask, 'mask'), 'mask'),
  };
}

export async function tasksRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const admin = adminAuth(ctx.config.adminToken);
  const params = taskIdParams;
  const byId = (id: string) => {
    const t = ctx.runtime.task(id);
    if (!t) throw new EngineError('not_found', `task "${id}" does not exist`);
    return t;
  };

  app.get('/tasks', { schema: { summary: 'List the tasks', tags: ['tasks'], response: { 200: { type: 'object', properties: { tasks: { type: 'array', items: task } } } } } }, async () => ({
    tasks: ctx.runtime.tasks(),
  }));

  app.get<{ Params: { id: string } }>(
    '/tasks/:id',
    { schema: { summary: 'One task', tags: ['tasks'], params, response: { 200: task, ...errorResponses(404) } } },
    async (request) => byId(request.params.id),
  );

  app.put<{ Params: { id: string } }>(
    '/tasks/:id',
    {
      onRequest: admin,
      schema: {
        summary: 'Add a task (its packed mask); 201 once it is on disk and in use',
        tags: ['tasks'],
        security: bearer,
        params,
        body: putTaskBody,
        response: { 201: task, ...errorResponses(400, 401, 403, 409, 413) },
      },
    },
    async (request, reply) => {
      const added = await (ctx.replica ?? ctx.runtime).addTask(decodeTaskBody(request.params.id, request.body));
      return reply.code(201).header('location', `/tasks/${encodeURIComponent(added.id)}`).send(added);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/tasks/:id',
    {
      onRequest: admin,
      schema: { summary: 'Remove a task (durably)', tags: ['tasks'], security: bearer, params, response: { 204: { type: 'null' }, ...errorResponses(401, 403, 404) } },
    },
    async (request, reply) => {
      if (ctx.replica) await ctx.replica.removeTask(request.params.id); // the store knows best whether it exists
      else {
        byId(request.params.id);
        await ctx.runtime.removeTask(request.params.id);
      }
      return reply.code(204).send();
    },
  );
}
