import { Metadata, type ServerUnaryCall, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import type { RawClassifyCall } from '../../core/classify-request.ts';
import type { Prediction } from '../../core/engine.ts';
import type { ServiceContext } from '../context.ts';
import { decodePacked } from '../decode-inputs.ts';
import { requestId } from '../request-id.ts';
import { toServiceError } from './status.ts';

/**
 * supsup.v1.Classifier: Infer and ListTasks over the same runtime, validator and queue as REST.
 * Field names are the proto's (snake_case: the loader keeps case). The deadline is the client's gRPC
 * deadline when it is sooner than the server's --timeout-ms. Each call gets a request id (the client's
 * x-request-id metadata when sane, else a UUID), echoed in the response metadata and on its log line, as REST does.
 */
interface InferRequest {
  inputs?: Buffer;
  shape?: number[];
  dtype?: string;
  task?: string;
  inference?: { method?: string; objective?: string; decide_from?: string } | null;
  top_k?: number;
}

export function decodeInferRequest(r: InferRequest): RawClassifyCall {
  const decoded = decodePacked(r.inputs ?? Buffer.alloc(0), r.dtype, r.shape ?? [], 'inputs');
  const i = r.inference;
  const inference = i ? Object.fromEntries([['method', i.method], ['objective', i.objective], ['decideFrom', i.decide_from]].filter(([, v]) => v !== undefined)) : undefined;
  return { ...decoded, task: r.task, inference, topK: r.top_k };
}

function encodePrediction(p: Prediction) {
  return { label: p.label, probabilities: p.probabilities, top_k: p.topK ?? [], task: p.task };
}

export function classifierService(ctx: ServiceContext, inflight: { count: number }): UntypedServiceImplementation {
  const observe = <Req, Res>(method: string, handler: (call: ServerUnaryCall<Req, Res>) => Promise<Res>) => {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const start = performance.now();
      const reqId = requestId(call.metadata.get('x-request-id')[0]);
      const echo = new Metadata();
      echo.set('x-request-id', reqId);
      call.sendMetadata(echo);
      inflight.count++;
      const done = (outcome: string) => {
        inflight.count--;
        const ms = performance.now() - start;
        ctx.metrics.requests.inc({ protocol: 'grpc', route: method, outcome });
        ctx.metrics.requestDuration.observe({ protocol: 'grpc', route: method }, ms / 1000);
        ctx.log.info({ reqId, rpc: method, code: outcome, responseTime: ms }, 'gRPC call completed');
      };
      handler(call).then(
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
  };

  return {
    Infer: observe('/supsup.v1.Classifier/Infer', async (call: ServerUnaryCall<InferRequest, unknown>) => {
      const classify = ctx.runtime.validate(decodeInferRequest(call.request));
      const predictions = await ctx.runtime.classify(classify, timeoutFor(call.getDeadline(), ctx.config.timeoutMs));
      return { predictions: predictions.map(encodePrediction) };
    }),
    ListTasks: observe('/supsup.v1.Classifier/ListTasks', async () => ({
      tasks: ctx.runtime.tasks().map((t) => ({
        id: t.id,
        name: t.name,
        description: t.description ?? '',
        added_at: t.addedAt,
        density: t.density,
        transform_json: JSON.stringify(t.transform),
      })),
    })),
  };
}

function timeoutFor(deadline: Date | number, serverTimeoutMs: number): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(at)) return serverTimeoutMs;
  return Math.max(1, Math.min(serverTimeoutMs, at - Date.now()));
}
