// The gRPC server: supsup.v1.Classifier, the Open Inference Protocol's inference.GRPCInferenceService,
// grpc.health.v1.Health (SERVING only while ready; NOT_SERVING from the moment draining starts; the service
// name "liveness" is SERVING while live, for an orchestrator's liveness probe) and server reflection covering
// them all. Message limits match REST's body limit.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ServiceContext } from '../context.ts';
import { admissionInterceptor } from './admission.ts';
import { classifierService } from './classifier-service.ts';
import { addLazyReflection } from './lazy-reflection.ts';
import { inferenceService } from '../oip/grpc-service.ts';

export const PROTO_PATH = fileURLToPath(new URL('../../../proto/supsup.proto', import.meta.url));
export const OIP_PROTO_PATH = fileURLToPath(new URL('../../../proto/inference.proto', import.meta.url));
export const CLASSIFIER_SERVICE = 'supsup.v1.Classifier';
export const OIP_SERVICE = 'inference.GRPCInferenceService';
/** The grpc.health.v1 service name that answers liveness (like /healthz) rather than readiness. */
export const LIVENESS_SERVICE = 'liveness';
export const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

export interface GrpcServer {
  server: grpc.Server;
  port: number;
  health: HealthImplementation;
  /** Unary calls (Classifier, inference) in progress. */
  inflight: { count: number };
}

export async function startGrpcServer(ctx: ServiceContext): Promise<GrpcServer> {
  const definition = protoLoader.loadSync([PROTO_PATH, OIP_PROTO_PATH, healthProtoPath], LOADER_OPTIONS);
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    supsup: { v1: { Classifier: grpc.ServiceClientConstructor } };
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': ctx.config.bodyLimit,
    'grpc.max_send_message_length': Math.max(ctx.config.bodyLimit, 64 * 1024 * 1024),
    interceptors: [admissionInterceptor(ctx, [`/${CLASSIFIER_SERVICE}/Infer`, `/${OIP_SERVICE}/ModelInfer`])],
  });
  const inflight = { count: 0 };
  server.addService(proto.supsup.v1.Classifier.service, classifierService(ctx, inflight));
  server.addService(proto.inference.GRPCInferenceService.service, inferenceService(ctx, inflight));

  const names = ['', CLASSIFIER_SERVICE, OIP_SERVICE];
  const health = new HealthImplementation(Object.fromEntries([...names, LIVENESS_SERVICE].map((n) => [n, 'NOT_SERVING'])));
  health.addToServer(server);
  ctx.health.onChange((ready, live) => {
    for (const n of names) health.setStatus(n, ready ? 'SERVING' : 'NOT_SERVING');
    health.setStatus(LIVENESS_SERVICE, live ? 'SERVING' : 'NOT_SERVING');
  });
  addLazyReflection(server, definition);

  const address = ctx.config.host.includes(':') ? `[${ctx.config.host}]:${ctx.config.grpcPort}` : `${ctx.config.host}:${ctx.config.grpcPort}`;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(new Error(`gRPC could not listen on ${address}: ${err.message}`)) : resolve(bound)));
  });
  return { server, port, health, inflight };
}

/**
 * Graceful stop: no new calls; once the unary calls in progress have finished, the long-lived streams
 * (health Watch, reflection) are cancelled, since they would otherwise hold the server open. After
 * `timeoutMs` everything left is cancelled.
 */
export function stopGrpcServer(g: GrpcServer, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    g.server.tryShutdown(() => {
      clearInterval(poll);
      resolve();
    });
    const poll = setInterval(() => {
      if (g.inflight.count === 0 || Date.now() - started >= timeoutMs) {
        clearInterval(poll);
        g.server.forceShutdown();
        resolve();
      }
    }, 20);
  });
}
