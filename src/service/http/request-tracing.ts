import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { CallSpan, Tracing } from '../tracing.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's trace span; unset when tracing is off. */
    span?: CallSpan;
  }
}

/** One server span per HTTP request, named by method and route pattern, when tracing is on. */
export const requestTracingPlugin = fp<{ tracing: Tracing }>(async (app: FastifyInstance, { tracing }) => {
  if (!tracing.enabled) return;
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const header = (name: string) => {
      const v = request.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    request.span = tracing.startCall(`${request.method} ${route}`, header, {
      'http.request.method': request.method,
      'http.route': route,
      'url.path': request.url.split('?')[0],
      'supsup.request_id': request.id,
    });
  });
  app.addHook('onResponse', async (request, reply) => {
    request.span?.setAttributes({ 'http.response.status_code': reply.statusCode });
    request.span?.end(reply.statusCode >= 500 ? (request.errorCode ?? `http_${reply.statusCode}`) : undefined);
  });
});
