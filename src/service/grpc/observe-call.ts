import { Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { apiTokenCheck } from '../bearer-token.ts';
import type { ServiceContext } from '../context.ts';
import { requestId } from '../request-id.ts';
import type { ErrorCode } from '../../contract/errors.ts';
import { GRPC_STATUS, toServiceError } from './status.ts';

/** Outcomes that mark a span failed: the server's fault or unavailability, not the caller's mistakes. */
const SERVER_FAULTS = new Set(['internal', 'unavailable', 'deadline_exceeded']);

/**
 * Wraps a unary handler the way every supsup gRPC method is served: a request id (the client's
 * x-request-id metadata when sane, else a UUID) echoed in the response metadata and on the call's log line,
 * the in-flight count the graceful stop waits for, request metrics, errors turned into statuses, and the
 * API token (authorization metadata) when one is set, except for methods marked open (server health), and
 * a trace span when tracing is on.
 */
export function observeCall(ctx: ServiceContext, inflight: { count: number }) {
  const apiCheck = apiTokenCheck(ctx.config.apiToken, ctx.config.adminToken);
  return <Req, Res>(method: string, handler: (call: ServerUnaryCall<Req, Res>) => Promise<Res>, access: 'open' | 'api' = 'api') =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const start = performance.now();
      const reqId = requestId(call.metadata.get('x-request-id')[0]);
      const header = (name: string) => {
        const v = call.metadata.get(name)[0];
        return typeof v === 'string' ? v : undefined;
      };
      const span = ctx.tracing.startCall(method, header, { 'rpc.system': 'grpc', 'rpc.method': method, 'supsup.request_id': reqId });
      const echo = new Metadata();
      echo.set('x-request-id', reqId);
      call.sendMetadata(echo);
      inflight.count++;
      const done = (outcome: string) => {
        inflight.count--;
        const ms = performance.now() - start;
        ctx.metrics.requests.inc({ protocol: 'grpc', route: method, outcome });
        ctx.metrics.requestDuration.observe({ protocol: 'grpc', route: method }, ms / 1000);
        ctx.log.info({ reqId, ...(span.traceId ? { traceId: span.traceId } : {}), rpc: method, code: outcome, responseTime: ms }, 'gRPC call completed');
        span.setAttributes({ 'rpc.grpc.status_code': GRPC_STATUS[outcome as ErrorCode] ?? 0, 'supsup.outcome': outcome });
        span.end(SERVER_FAULTS.has(outcome) ? outcome : undefined);
      };
      const checked = async () => {
        if (apiCheck && access === 'api') apiCheck(call.metadata.get('authorization')[0]);
        return handler(call);
      };
      checked().then(
        (response) => {
          done('ok');
          callback(null, response);
        },
        (error: unknown) => {
          const { serviceError, code } = toServiceError(error);
          if (code === 'internal') ctx.log.error({ reqId, err: error, rpc: method }, 'gRPC call failed');
          done(code);
          callback(serviceError);
        },
      );
    };
}

/** The call's time budget: the client's gRPC deadline when it is sooner than the server's own timeout. */
export function callTimeoutMs(call: ServerUnaryCall<unknown, unknown>, serverTimeoutMs: number): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return serverTimeoutMs;
  return Math.max(1, Math.min(serverTimeoutMs, at - Date.now()));
}
