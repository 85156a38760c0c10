import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.ts';

/** GET /metrics: the Prometheus text exposition of the service's registry. */
export async function metricsRoute(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  const { registry } = ctx.metrics;
  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'] } }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
