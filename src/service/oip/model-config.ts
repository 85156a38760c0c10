// Triton's model configuration extension (docs/protocol/extension_model_configuration.md): a model's
// configuration as Triton's ModelConfig message (model_config.proto) has it, REST as its JSON form and gRPC as the
// message, derived from the model metadata (models.ts) so the two never disagree. Tensors: batched (max_batch_size
// > 0), so `dims` leave out the batch dimension; a per-example scalar is dims [1] reshaped to [] (Triton's way).
// Scheduling: the dynamic batcher with --max-wait-ms as the queue delay and --max-queue as the queue size; one
// engine worker on the CPU (or a GPU backend's device, still one instance).
import type { ClassifyLimits } from '../../contract/classify.ts';
import { OIP_PLATFORM, OIP_VERSION, type OipModel, oipModelMetadata } from './models.ts';

/** OIP datatype names to Triton's DataType enum names (BYTES is TYPE_STRING there). */
const TRITON_TYPES: Record<string, string> = { FP32: 'TYPE_FP32', FP64: 'TYPE_FP64', UINT8: 'TYPE_UINT8', INT64: 'TYPE_INT64', BOOL: 'TYPE_BOOL', BYTES: 'TYPE_STRING' };

export interface SchedulingSettings {
  maxQueue: number;
  maxWaitMs: number;
  timeoutMs: number;
}

function tensorConfig(t: { name: string; datatype: string; shape: number[] }) {
  const dims = t.shape.slice(1);
  return { name: t.name, data_type: TRITON_TYPES[t.datatype], ...(dims.length > 0 ? { dims } : { dims: [1], reshape: { shape: [] } }) };
}

export function oipModelConfig(model: OipModel, limits: ClassifyLimits, scheduling: SchedulingSettings) {
  const metadata = oipModelMetadata(model, limits);
  return {
    name: model.name,
    platform: OIP_PLATFORM,
    backend: 'supsup',
    version_policy: { specific: { versions: [Number(OIP_VERSION)] } },
    max_batch_size: limits.maxBatch,
    input: metadata.inputs.map((t) => ({ ...tensorConfig(t), format: 'FORMAT_NONE' })),
    output: metadata.outputs.map(tensorConfig),
    dynamic_batching: {
      max_queue_delay_microseconds: scheduling.maxWaitMs * 1000,
      default_queue_policy: { timeout_action: 'REJECT', default_timeout_microseconds: scheduling.timeoutMs * 1000, allow_timeout_override: true, max_queue_size: scheduling.maxQueue },
    },
    instance_group: [{ name: `${model.name}_0`, kind: 'KIND_CPU', count: 1 }],
    parameters: Object.fromEntries(Object.entries(metadata.properties).map(([k, v]) => [k, { string_value: v }])),
  };
}
