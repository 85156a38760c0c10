import { type Metadata, type ServerInterceptor, ServerInterceptingCall } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { apiTokenCheck } from '../bearer-token.ts';
import type { ServiceContext } from '../context.ts';
import { toServiceError } from './status.ts';

/**
 * Cheap refusal under overload, as REST does it in onRequest (http/admission.ts): a call to one of `methods`
 * (those that queue work for the engine) is admitted when its metadata arrives, before its message is read and
 * decoded; while the queue is full it waits there for up to --admission-wait-ms (runtime/admission.ts). A refused
 * call ends there with RESOURCE_EXHAUSTED (or UNAVAILABLE while no engine worker is up) and a retry-after trailer,
 * through the status table. A call without a valid API token is let through
 * unadmitted, for its handler to refuse as unauthenticated. An admitted call holds its place until it ends.
 */
export function admissionInterceptor(ctx: ServiceContext, methods: readonly string[]): ServerInterceptor {
  const apiCheck = apiTokenCheck(ctx.config.apiToken, ctx.config.adminToken);
  const authenticated = (metadata: Metadata) => {
    try {
      apiCheck?.(metadata.get('authorization')[0]);
      return true;
    } catch {
      return false;
    }
  };
  return (method, call) => {
    if (!methods.includes(method.path)) return new ServerInterceptingCall(call);
    let release: (() => void) | undefined;
    const gone = new AbortController();
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, proceed) => {
            if (!authenticated(metadata)) return proceed(metadata);
            const start = performance.now();
            ctx.runtime.admit(gone.signal).then(
              (r) => {
                if (gone.signal.aborted) return r();
                release = r;
                proceed(metadata);
              },
              (e) => {
                if (gone.signal.aborted) return;
                const { serviceError, code } = toServiceError(e);
                ctx.metrics.requests.inc({ protocol: 'grpc', route: method.path, outcome: code });
                ctx.metrics.requestDuration.observe({ protocol: 'grpc', route: method.path }, (performance.now() - start) / 1000);
                call.sendStatus({ code: serviceError.code!, details: serviceError.details!, metadata: serviceError.metadata! });
              },
            );
          },
          onCancel: () => {
            gone.abort();
            release?.();
          },
        }),
      sendStatus: (status, next) => {
        release?.();
        next(status);
      },
    });
  };
}
