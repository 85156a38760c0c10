// inference.GRPCInferenceService (proto/inference.proto): the Open Inference Protocol over gRPC, for
// Triton / KServe / Seldon clients. The checks and the mapping to the engine are mapping.ts, the same as the
// OIP REST routes'; this file only unwraps the messages. Outputs always travel in raw_output_contents.
import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { invalid } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { INPUT_DATATYPES, type InputTensor } from './input-tensor.ts';
import { type OipInferRequest, oipOutputs, planOipInfer, rawOutput } from './mapping.ts';
import { OIP_VERSION, oipModelMetadata, resolveOipModel, serviceModels } from './models.ts';
import { oipModelConfig } from './model-config.ts';
import { loadModel, modelNames, repositoryIndex, unloadModel } from './repository.ts';
import { oipServerMetadata } from './server-metadata.ts';
import { inferRecorded } from './statistics.ts';
import { callTimeoutMs, observeCall } from '../grpc/observe-call.ts';

type Parameter = { parameter_choice?: string } & Record<string, unknown>;
type Parameters = Record<string, Parameter> | undefined;
interface InferInput {
  name?: string;
  datatype?: string;
  shape?: number[];
  parameters?: Parameters;
  contents?: Record<string, unknown[]> | null;
}
interface ModelInferRequest {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  inputs?: InferInput[];
  outputs?: { name?: string; parameters?: Parameters }[];
  raw_input_contents?: Buffer[];
}

/** InferParameter maps as plain values. */
function parameterValues(parameters: Parameters): Record<string, unknown> {
  return Object.fromEntries(Object.entries(parameters ?? {}).map(([k, p]) => [k, p.parameter_choice ? p[p.parameter_choice] : undefined]));
}

/** The message into the transport-neutral request: raw_input_contents (one per input) or each input's contents. */
export function decodeModelInfer(r: ModelInferRequest): OipInferRequest {
  const inputs = r.inputs ?? [];
  const raw = r.raw_input_contents ?? [];
  if (raw.length > 0 && raw.length !== inputs.length) throw invalid(`raw_input_contents holds ${raw.length} entries for ${inputs.length} inputs: one per input, in order`);
  if (raw.length > 0 && inputs.some((t) => t.contents)) throw invalid('send each input in raw_input_contents or in contents, not both');
  return {
    parameters: parameterValues(r.parameters),
    inputs: inputs.map((t, i): InputTensor => {
      const field = Object.hasOwn(INPUT_DATATYPES, t.datatype ?? '') ? INPUT_DATATYPES[t.datatype as keyof typeof INPUT_DATATYPES].contentsField : undefined;
      const values = field && t.contents ? t.contents[field] : undefined;
      return { name: t.name, datatype: t.datatype, shape: t.shape, data: raw.length > 0 ? { raw: raw[i] } : values ? { values } : undefined };
    }),
    outputs: r.outputs?.map((o) => ({ name: o.name, parameters: parameterValues(o.parameters) })),
  };
}

export function inferenceService(ctx: ServiceContext, inflight: { count: number }): UntypedServiceImplementation {
  const observe = observeCall(ctx, inflight);
  const rpc = (name: string) => `/inference.GRPCInferenceService/${name}`;
  const source = serviceModels(ctx);
  type ModelCall = ServerUnaryCall<{ name?: string; version?: string }, unknown>;
  type RepositoryCall = ServerUnaryCall<{ model_name?: string }, unknown>;
  return {
    ServerLive: observe(rpc('ServerLive'), async () => ({ live: ctx.health.live }), 'open'),
    ServerReady: observe(rpc('ServerReady'), async () => ({ ready: ctx.health.ready }), 'open'),
    ModelReady: observe(rpc('ModelReady'), async (call: ModelCall) => {
      resolveOipModel(source, call.request.name ?? '', call.request.version);
      return { ready: ctx.health.ready };
    }),
    ServerMetadata: observe(rpc('ServerMetadata'), async () => oipServerMetadata(), 'open'),
    ModelMetadata: observe(rpc('ModelMetadata'), async (call: ModelCall) =>
      oipModelMetadata(resolveOipModel(source, call.request.name ?? '', call.request.version), ctx.runtime.info.limits),
    ),
    ModelInfer: observe(rpc('ModelInfer'), async (call: ServerUnaryCall<ModelInferRequest, unknown>) => {
      const model = resolveOipModel(source, call.request.model_name ?? '', call.request.model_version);
      const plan = () => planOipInfer(decodeModelInfer(call.request), model, ctx.runtime, callTimeoutMs(call, ctx.config.timeoutMs));
      return inferRecorded(ctx, model, plan, (predictions, planned) => {
        const outputs = oipOutputs(predictions, planned.outputs);
        return {
          model_name: model.name,
          model_version: OIP_VERSION,
          id: call.request.id ?? '',
          parameters: { task_inferred: { bool_param: planned.call.task === undefined } },
          outputs: outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
          raw_output_contents: outputs.map(rawOutput),
        };
      });
    }),
    ModelConfig: observe(rpc('ModelConfig'), async (call: ModelCall) => ({
      config: oipModelConfig(resolveOipModel(source, call.request.name ?? '', call.request.version), ctx.runtime.info.limits, ctx.config),
    })),
    ModelStatistics: observe(rpc('ModelStatistics'), async (call: ModelCall) => {
      const name = call.request.name ?? '';
      if (name === '') {
        if (call.request.version) throw invalid('a version needs a model name');
        return ctx.metrics.modelStatistics.report(modelNames(ctx));
      }
      return ctx.metrics.modelStatistics.report([resolveOipModel(source, name, call.request.version).name]);
    }),
    RepositoryIndex: observe(rpc('RepositoryIndex'), async (call: ServerUnaryCall<{ ready?: boolean }, unknown>) => ({ models: repositoryIndex(ctx, call.request.ready === true) })),
    RepositoryModelLoad: observe(rpc('RepositoryModelLoad'), async (call: RepositoryCall) => {
      loadModel(ctx, call.request.model_name ?? '');
      return {};
    }),
    RepositoryModelUnload: observe(rpc('RepositoryModelUnload'), async (call: RepositoryCall) => unloadModel(ctx, call.request.model_name ?? '')),
  };
}
