import type { FastifyBaseLogger } from 'fastify';
import type { ModelRuntime } from '../runtime/model-runtime.ts';
import type { StoreReplica } from '../store/store-replica.ts';
import type { ServeConfig } from './config.ts';
import type { HealthState } from './health-state.ts';
import type { ServiceMetrics } from './metrics.ts';
import type { Tracing } from './tracing.ts';

/** What every adapter (REST plugins, gRPC services) is given: the runtime and the service's shared state. */
export interface ServiceContext {
  config: ServeConfig;
  runtime: ModelRuntime;
  metrics: ServiceMetrics;
  health: HealthState;
  log: FastifyBaseLogger;
  tracing: Tracing;
  /** Set when serving as a replica of a shared task store (--store): task changes go through it. */
  replica?: StoreReplica;
}
