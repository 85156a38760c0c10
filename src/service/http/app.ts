import Fastify, { type FastifyInstance } from 'fastify';
import type { ServeConfig } from '../config.ts';
import type { ServiceContext } from '../context.ts';
import { apiTokenCheck } from '../bearer-token.ts';
import { isPretty, prettyStream } from '../log-format.ts';
import { requestId } from '../request-id.ts';
import { PACKAGE_VERSION } from '../version.ts';
import { classifyRoute } from './classify-route.ts';
import { errorsPlugin } from './errors.ts';
import { healthRoutes } from './health-routes.ts';
import { metricsRoute } from './metrics-route.ts';
import { modelRoute } from './model-route.ts';
import { oipModelRoutes, oipServerRoutes } from '../oip/rest-routes.ts';
import { openapiPlugin } from './openapi.ts';
import { requestMetricsPlugin } from './request-metrics.ts';
import { requestTracingPlugin } from './request-tracing.ts';
import { tasksRoutes } from './tasks-routes.ts';

/**
 * The Fastify instance, created first so its pino logger (JSON lines, or log-format.ts's on a terminal; one request
 * id per request, taken from X-Request-Id when the client sends a sane one) serves the whole process.
 * Route schemas document the API (OpenAPI) but do not validate: decoding and the engine's validator do.
 */
export function createHttpApp(config: ServeConfig): FastifyInstance {
  const app = Fastify({
    logger: { level: config.logLevel, ...(isPretty(config.logFormat ?? 'auto') && { stream: prettyStream() }) },
    bodyLimit: config.bodyLimit,
    genReqId: (req) => requestId(req.headers['x-request-id']),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is 415
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  return app;
}

/** Registers every plugin and route on the app. */
export async function registerHttpRoutes(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  // While draining, every answer closes its connection, so keep-alive clients do not hold the server open.
  app.addHook('onSend', async (_request, reply) => {
    if (ctx.health.isDraining) reply.header('connection', 'close');
  });
  await app.register(errorsPlugin, { bodyLimit: ctx.config.bodyLimit });
  await app.register(requestMetricsPlugin, { metrics: ctx.metrics });
  await app.register(requestTracingPlugin, { tracing: ctx.tracing });
  await app.register(openapiPlugin, { version: PACKAGE_VERSION });
  for (const routes of [healthRoutes, metricsRoute, oipServerRoutes]) {
    await app.register(async (scope) => routes(scope, ctx));
  }
  // Everything that serves the model needs the API token when one is set; health, metrics and docs do not.
  const apiCheck = apiTokenCheck(ctx.config.apiToken, ctx.config.adminToken);
  await app.register(async (served) => {
    if (apiCheck) served.addHook('onRequest', async (request) => apiCheck(request.headers.authorization));
    for (const routes of [modelRoute, classifyRoute, tasksRoutes, oipModelRoutes]) {
      await served.register(async (scope) => routes(scope, ctx));
    }
  });
}
