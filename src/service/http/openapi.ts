import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** The OpenAPI 3 document (GET /openapi.json) and its UI (GET /docs), built from the routes' schemas. */
export const openapiPlugin = fp<{ version: string }>(async (app: FastifyInstance, { version }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'supsup',
        description: 'Inference with Supermasks in Superposition: one frozen base network, one bit-packed mask per task; classify with a given task or have it inferred.',
        version,
      },
      tags: [
        { name: 'inference', description: 'Classification' },
        { name: 'tasks', description: 'Task (mask) management' },
        { name: 'model', description: 'The model being served' },
        { name: 'health', description: 'Liveness, readiness, metrics' },
        { name: 'oip', description: 'Open Inference Protocol (KServe v2)' },
      ],
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
