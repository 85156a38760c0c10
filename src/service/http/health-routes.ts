import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.ts';

/**
 * GET /healthz (live: 200 while the process answers, 503 once it gave up restarting its engine worker) and
 * GET /readyz (200 once loaded and warmed up; 503 before, while the engine worker restarts, and while draining).
 */
export async function healthRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get('/healthz', { schema: { summary: 'Liveness: 200 live, 503 when the engine could not be restarted', tags: ['health'] } }, async (_request, reply) => {
    if (ctx.health.live) return { status: 'ok' };
    return reply.code(503).send({ status: 'failed', reason: ctx.health.reason });
  });
  app.get('/readyz', { schema: { summary: 'Readiness: 200 ready, 503 not (yet) or draining', tags: ['health'] } }, async (_request, reply) => {
    // A replica that lost its task store stays ready (it serves what it holds) but says why changes are refused.
    const store = ctx.replica?.problem;
    if (ctx.health.ready) return { ready: true, ...(store ? { reason: store } : {}) };
    return reply.code(503).header('retry-after', '1').send({ ready: false, reason: ctx.health.reason });
  });
}
