import type { FastifyInstance } from 'fastify';
import { invalid } from '../../contract/errors.ts';
import type { TaskSpec, TaskTransform } from '../../contract/task.ts';
import type { ServiceContext } from '../context.ts';
import { decodeBase64, decodeWords } from '../decode-inputs.ts';
import { adminAuth } from './admin-auth.ts';
import { type PageRequest, taskPage, taskView, wantsPage } from '../../core/task-page.ts';
import { taskListBody } from './task-list-stream.ts';
import { bearer, errorResponses, putTaskBody, task, taskIdParams, taskList, taskListQuery } from './schemas.ts';

// Task management: list and read freely; PUT (add) and DELETE only with the admin token. A PUT answers
// 201 only once the mask is durable in the model directory and live in the engine; a task id is never
// overwritten (DELETE it first).
const PUT_FIELDS = ['mask', 'name', 'description', 'transform'];

export function decodeTaskBody(id: string, body: unknown): { task: TaskSpec; mask: Uint32Array } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).find((k) => !PUT_FIELDS.includes(k));
  if (unknown !== undefined) throw invalid(`unknown field "${unknown}" (known: ${PUT_FIELDS.join(', ')})`);
  if (b.mask === undefined) throw invalid('mask is required: the packed mask as base64');
  if (b.name !== undefined && typeof b.name !== 'string') throw invalid('name must be a string');
  if (b.description !== undefined && typeof b.description !== 'string') throw invalid('description must be a string');
  const task: TaskSpec = {
    id,
    name: (b.name as string | undefined) ?? id,
    ...(b.description !== undefined ? { description: b.description as string } : {}),
    // Checked by the model store with the manifest's rules, before anything is written.
    transform: (b.transform ?? { kind: 'identity' }) as TaskTransform,
  };
  return { task, mask: decodeWords(decodeBase64(b.mask, 'mask'), 'mask') };
}

export async function tasksRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const admin = adminAuth(ctx.config.adminToken);
  const params = taskIdParams;

  app.get<{ Querystring: PageRequest }>(
    '/tasks',
    {
      schema: {
        summary: 'List the tasks: all of them, or a page at a time with limit/pageToken (docs/service.md, "Listing tasks")',
        tags: ['tasks'],
        querystring: taskListQuery,
        response: { 200: taskList, ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      if (wantsPage(q)) return taskPage(ctx.runtime.tasksById(), q);
      return reply.type('application/json; charset=utf-8').send(taskListBody(ctx.runtime.tasks(), taskView(q.view)));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/tasks/:id',
    { schema: { summary: 'One task', tags: ['tasks'], params, response: { 200: task, ...errorResponses(404) } } },
    async (request) => ctx.runtime.requireTask(request.params.id),
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
      const { task, mask } = decodeTaskBody(request.params.id, request.body);
      const added = await (ctx.replica ?? ctx.runtime).addTask(task, mask);
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
      await (ctx.replica ?? ctx.runtime).removeTask(request.params.id);
      return reply.code(204).send();
    },
  );
}
