import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { ServiceMetrics } from '../metrics.ts';

/**
 * Counts and times every HTTP answer: route is the route pattern (e.g. /tasks/:id; "unmatched" for unknown
 * paths, so label values stay bounded), outcome "ok" or the error code sent.
 */
export const requestMetricsPlugin = fp<{ metrics: ServiceMetrics }>(async (app: FastifyInstance, { metrics }) => {
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const outcome = request.errorCode ?? (status < 400 ? 'ok' : `http_${status}`);
    metrics.requests.inc({ protocol: 'http', route, outcome });
    metrics.requestDuration.observe({ protocol: 'http', route }, reply.elapsedTime / 1000);
  });
});
