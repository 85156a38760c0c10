// The whole service: HTTP (Fastify) and gRPC listening first, so liveness answers while the model loads;
// then the model is loaded and warmed up, and readiness turns true.
// Stop (SIGTERM): readiness false and gRPC health NOT_SERVING at once; after --drain-delay-ms (default 0)
// both servers stop accepting, queued and in-flight requests finish, then the engine worker stops;
// whatever is still open at the timeout is cut.
import type { FastifyInstance } from 'fastify';
import type { StartedEngine } from '../runtime/engine-start.ts';
import { ModelRuntime } from '../runtime/model-runtime.ts';
import type { ServeConfig } from './config.ts';
import type { ServiceContext } from './context.ts';
import { type GrpcServer, startGrpcServer, stopGrpcServer } from './grpc/server.ts';
import { HealthState } from './health-state.ts';
import { createHttpApp, registerHttpRoutes } from './http/app.ts';
import { ServiceMetrics } from './metrics.ts';
import { createTracing } from './tracing.ts';
import type { StoreReplica } from '../store/store-replica.ts';
import { parseStoreUrl } from '../store/store-url.ts';
import { PACKAGE_VERSION } from './version.ts';

export interface RunningService {
  ctx: ServiceContext;
  app: FastifyInstance;
  httpPort: number;
  grpcPort: number;
  /** Resolves true when everything finished within the timeout, false when it had to cut. */
  stop(timeoutMs: number): Promise<boolean>;
}

/** `started`: an engine worker already opening config.model (startEngine), which the runtime adopts. */
export async function startService(config: ServeConfig, started?: StartedEngine): Promise<RunningService> {
  const app = createHttpApp(config);
  const log = app.log;
  const { adminToken, apiToken, ...shown } = config;
  const hidden = (t: string | undefined) => (t ? '(set)' : '(unset)');
  const storeAddress = config.store ? parseStoreUrl(config.store) : undefined;
  log.info({ config: { ...shown, store: storeAddress?.shown, adminToken: hidden(adminToken), apiToken: hidden(apiToken) } }, 'starting supsup serve');

  let runtime: ModelRuntime | undefined;
  let health: HealthState | undefined;
  const metrics = new ServiceMetrics({
    tasksLoaded: () => runtime?.taskCount ?? 0,
    maskBankBytes: () => runtime?.maskBankBytes ?? 0,
    queueDepth: () => runtime?.queueDepth ?? 0,
    tensors: () => runtime?.tensors ?? 0,
    ready: () => (health?.ready ? 1 : 0),
  });
  runtime = ModelRuntime.create(
    {
      dir: config.model,
      backend: config.backend,
      kernels: config.kernels,
      maxBatch: config.maxBatch,
      epsilon: config.epsilon,
      rerank: config.rerank,
      maxQueue: config.maxQueue,
      maxWaitMs: config.maxWaitMs,
      admissionWaitMs: config.admissionWaitMs,
      maxEngineRestarts: config.maxEngineRestarts,
      engineRestartDelayMs: config.engineRestartDelayMs,
    },
    log,
    metrics.runtimeObserver(),
    started,
  );
  const rt = runtime;
  health = new HealthState(() => rt.state);
  const tracing = await createTracing(config.otelEndpoint, PACKAGE_VERSION);
  // The task store's client (pg) is loaded only for a replica: most servers never use it.
  let replica: StoreReplica | undefined;
  if (storeAddress) {
    const [{ StoreReplica }, { PostgresTaskStore }] = await Promise.all([import('../store/store-replica.ts'), import('../store/postgres-task-store.ts')]);
    replica = new StoreReplica(new PostgresTaskStore(storeAddress), config.model, log, metrics.registry);
  }
  const ctx: ServiceContext = { config, runtime: rt, metrics, health, log, tracing, replica };
  rt.onReadyChange(() => ctx.health.check());

  let grpc: GrpcServer | undefined;
  try {
    await registerHttpRoutes(app, ctx);
    await app.listen({ host: config.host, port: config.httpPort });
    grpc = await startGrpcServer(ctx);
    await replica?.prepare();
    await rt.load();
    replica?.follow(rt);
  } catch (e) {
    await replica?.close().catch(() => undefined);
    grpc?.server.forceShutdown();
    await app.close().catch(() => undefined);
    await rt.close();
    await tracing.shutdown().catch(() => undefined);
    throw e;
  }
  const info = rt.info;
  log.info({ backend: info.backend.name }, `backend: ${info.backend.name} (${info.backend.reason})`);
  log.info({ kernels: info.kernels.name }, `kernels: ${info.kernels.name} (${info.kernels.reason})`);
  log.info({ epsilon: info.limits.epsilon }, `unknown-task threshold: ε = ${info.limits.epsilon} (${info.epsilonSource})`);
  const rerank = info.limits.rerank;
  log.info({ rerank }, `task from one example: ${rerank === 1 ? "the one-shot gradient's top-1 (the paper)" : `the one-shot gradient's top ${rerank}, re-ranked by exact forwards`}`);
  const address = app.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;
  const g = grpc;
  log.info(
    { httpPort, grpcPort: g.port, model: info.dir, tasks: rt.taskCount, maskBankBytes: rt.maskBankBytes, architecture: info.architecture },
    `ready: HTTP on ${config.host}:${httpPort}, gRPC on ${config.host}:${g.port}`,
  );

  return {
    ctx,
    app,
    httpPort,
    grpcPort: g.port,
    async stop(timeoutMs) {
      const started = Date.now();
      ctx.health.startDraining();
      log.info({ timeoutMs, drainDelayMs: config.drainDelayMs }, 'draining: readiness is false; finishing in-flight requests');
      if (config.drainDelayMs > 0) await new Promise((r) => setTimeout(r, Math.min(config.drainDelayMs, timeoutMs)));
      timeoutMs = Math.max(0, timeoutMs - (Date.now() - started));
      const graceful = Promise.all([app.close(), stopGrpcServer(g, timeoutMs), rt.drain()]).then(() => true);
      const cut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(0, timeoutMs - 250)).unref());
      const clean = await Promise.race([graceful, cut]);
      if (!clean) {
        log.warn({ queued: rt.queueDepth }, 'shutdown timeout reached: cutting the remaining connections');
        app.server.closeAllConnections();
        g.server.forceShutdown();
      }
      await replica?.close().catch((e: Error) => log.warn({ err: e.message }, 'closing the task store connection failed'));
      await rt.close();
      await tracing.shutdown().catch((e: Error) => log.warn({ err: e }, 'could not export the last traces'));
      log.info({ clean, ms: Date.now() - started }, 'stopped');
      return clean;
    },
  };
}
