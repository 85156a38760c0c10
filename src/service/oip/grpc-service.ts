// inference.GRPCInferenceService (proto/inference.proto): the Open Inference Protocol over gRPC, for
// Triton / KServe / Seldon clients. The mapping to the engine is ../oip.ts, the same as the OIP REST routes.
import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { RawClassifyCall } from '../../contract/classify.ts';
import { invalid } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { OIP_MODEL, contentsValues, decodeOipInfer, oipModelMetadata, oipOutputs, rawInputValues, rawOutput, requireOipModel } from './mapping.ts';
import { PACKAGE_VERSION } from '../version.ts';
import { callTimeoutMs, observeCall } from '../grpc/observe-call.ts';

type Parameter = { parameter_choice?: string } & Record<string, unknown>;
interface InferInput {
  datatype?: string;
  shape?: number[];
  contents?: Record<string, unknown[]> | null;
}
interface ModelInferRequest {
  model_name?: string;
  id?: string;
  parameters?: Record<string, Parameter>;
  inputs?: InferInput[];
  raw_input_contents?: Buffer[];
}

export function decodeModelInfer(r: ModelInferRequest): RawClassifyCall {
  requireOipModel(r.model_name ?? '');
  const inputs = r.inputs ?? [];
  if (inputs.length !== 1) throw invalid('inputs must hold exactly one tensor: the batch of examples');
  const { datatype, shape, contents } = inputs[0];
  const raw = r.raw_input_contents ?? [];
  if (raw.length > 1) throw invalid('raw_input_contents must hold one entry: the one input');
  const values = raw.length === 1 ? rawInputValues(datatype, raw[0]) : contentsValues(datatype, contents);
  const parameters = Object.fromEntries(Object.entries(r.parameters ?? {}).map(([k, p]) => [k, p.parameter_choice ? p[p.parameter_choice] : undefined]));
  return decodeOipInfer(parameters, datatype, shape, values);
}

export function inferenceService(ctx: ServiceContext, inflight: { count: number }): UntypedServiceImplementation {
  const observe = observeCall(ctx, inflight);
  const rpc = (name: string) => `/inference.GRPCInferenceService/${name}`;
  return {
    ServerLive: observe(rpc('ServerLive'), async () => ({ live: ctx.health.live }), 'open'),
    ServerReady: observe(rpc('ServerReady'), async () => ({ ready: ctx.health.ready }), 'open'),
    ModelReady: observe(rpc('ModelReady'), async (call: ServerUnaryCall<{ name?: string }, unknown>) => {
      requireOipModel(call.request.name ?? '');
      return { ready: ctx.health.ready };
    }),
    ServerMetadata: observe(rpc('ServerMetadata'), async () => ({ name: 'supsup', version: PACKAGE_VERSION, extensions: [] }), 'open'),
    ModelMetadata: observe(rpc('ModelMetadata'), async (call: ServerUnaryCall<{ name?: string }, unknown>) => {
      requireOipModel(call.request.name ?? '');
      return { ...oipModelMetadata(ctx.runtime.info.limits), versions: [] };
    }),
    ModelInfer: observe(rpc('ModelInfer'), async (call: ServerUnaryCall<ModelInferRequest, unknown>) => {
      const classify = ctx.runtime.validate(decodeModelInfer(call.request));
      const predictions = await ctx.runtime.classify(classify, callTimeoutMs(call, ctx.config.timeoutMs));
      const outputs = oipOutputs(predictions);
      return {
        model_name: OIP_MODEL,
        id: call.request.id ?? '',
        parameters: { task_inferred: { bool_param: classify.task === undefined } },
        outputs: outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        raw_output_contents: outputs.map(rawOutput),
      };
    }),
  };
}
