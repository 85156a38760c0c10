import type { FastifyInstance } from 'fastify';
import type { ServiceContext } from '../context.ts';

/** GET /model: what is being served (architecture, normalisation, limits, tasks, backend and kernels). */
export function modelSummary(ctx: ServiceContext) {
  const m = ctx.runtime.info;
  return {
    dir: m.dir,
    architecture: m.architecture,
    seed: m.seed,
    normalization: m.normalization,
    limits: { maxBatch: m.limits.maxBatch, inputSize: m.limits.inputSize, classes: m.limits.classes, epsilon: m.limits.epsilon, rerank: m.limits.rerank },
    superfluousOutputs: m.limits.hasSuperfluous,
    tasks: ctx.runtime.taskCount,
    maskBankBytes: ctx.runtime.maskBankBytes,
    backend: m.backend.name,
    kernels: m.kernels.name,
  };
}

export async function modelRoute(app: FastifyInstance, ctx: ServiceContext): Promise<void> {
  app.get('/model', { schema: { summary: 'The model being served', tags: ['model'] } }, async () => modelSummary(ctx));
}
