// supsup.v1.Classifier: Infer and ListTasks over the same runtime, validator and queue as REST.
// Field names are the proto's (snake_case: the loader keeps case). The deadline is the client's gRPC
// deadline when it is sooner than the server's --timeout-ms.
import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { type Prediction, type RawClassifyCall, inferenceFromWire } from '../../contract/classify.ts';
import { type TaskPage, inView, taskPage, taskView, wantsPage } from '../../core/task-page.ts';
import type { ServiceContext } from '../context.ts';
import { decodePacked } from '../decode-inputs.ts';
import { callTimeoutMs, observeCall } from './observe-call.ts';

interface ListTasksRequest {
  page_size?: number;
  page_token?: string;
  view?: string;
}

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
  return { ...decoded, task: r.task, inference: r.inference ? inferenceFromWire(r.inference) : undefined, topK: r.top_k };
}

function encodePrediction(p: Prediction) {
  return { label: p.label, probabilities: p.probabilities, top_k: p.topK ?? [], task: p.task };
}

export function classifierService(ctx: ServiceContext, inflight: { count: number }): UntypedServiceImplementation {
  const observe = observeCall(ctx, inflight);
  return {
    Infer: observe('/supsup.v1.Classifier/Infer', async (call: ServerUnaryCall<InferRequest, unknown>) => {
      const classify = ctx.runtime.validate(decodeInferRequest(call.request));
      const predictions = await ctx.runtime.classify(classify, callTimeoutMs(call, ctx.config.timeoutMs));
      return { predictions: predictions.map(encodePrediction) };
    }),
    ListTasks: observe('/supsup.v1.Classifier/ListTasks', async (call: ServerUnaryCall<ListTasksRequest, unknown>) => {
      const { page_size, page_token, view } = call.request;
      const r = { limit: page_size || undefined, pageToken: page_token || undefined, view: view || undefined };
      const page: TaskPage = wantsPage(r) ? taskPage(ctx.runtime.tasksById(), r) : { tasks: ctx.runtime.tasks().map((t) => inView(t, taskView(r.view))) };
      return {
        tasks: page.tasks.map((t) => ({
          id: t.id,
          name: t.name,
          description: t.description ?? '',
          added_at: t.addedAt,
          density: t.density,
          transform_json: 'transform' in t ? JSON.stringify(t.transform) : '',
        })),
        next_page_token: page.nextPageToken ?? '',
      };
    }),
  };
}
