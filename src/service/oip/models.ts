// The models the Open Inference Protocol serves: the main one (`--model-name`, default "supsup"), which takes the
// task as a parameter or infers it, and every stored task as a model of its own name, the way multi-adapter
// servers expose each adapter, so a stock client picks a task by model name alone. Each has one version, "1".
// The main model's name wins over a task of the same id.
import type { ClassifyLimits } from '../../contract/classify.ts';
import { SupsupError } from '../../contract/errors.ts';
import type { ServiceContext } from '../context.ts';
import { INPUT_NAME, inputProperties } from './input-tensor.ts';

export const OIP_VERSION = '1';
export const OIP_PLATFORM = 'tensorflowjs_supsup';

export interface OipModel {
  name: string;
  /** The task a task model serves; undefined for the main model. */
  task?: string;
}

/** What resolving a model name needs: the main model's name and the stored tasks. */
export interface OipModelSource {
  modelName: string;
  hasTask(id: string): boolean;
}

/** The serving process's models: `--model-name` and the runtime's tasks. */
export function serviceModels(ctx: ServiceContext): OipModelSource {
  return { modelName: ctx.config.modelName, hasTask: (id) => ctx.runtime.findTask(id) !== undefined };
}

/** The model named (and version, when given), or not_found. */
export function resolveOipModel(source: OipModelSource, name: string, version?: string): OipModel {
  const model = name === source.modelName ? { name } : source.hasTask(name) ? { name, task: name } : undefined;
  if (!model) {
    throw new SupsupError('not_found', `unknown model "${name}" (this server serves "${source.modelName}", and each stored task as a model of its own id)`);
  }
  if (version !== undefined && version !== '' && version !== OIP_VERSION) {
    throw new SupsupError('not_found', `unknown version "${version}" of model "${name}" (versions: ${OIP_VERSION})`);
  }
  return model;
}

/** The output tensors, in the order they are returned when none are requested. */
export const OUTPUTS = ['probabilities', 'label', 'task', 'task_confidence', 'task_unknown'] as const;
export type OutputName = (typeof OUTPUTS)[number];

export function oipModelMetadata(model: OipModel, limits: ClassifyLimits) {
  return {
    name: model.name,
    versions: [OIP_VERSION],
    platform: OIP_PLATFORM,
    inputs: [{ name: INPUT_NAME, datatype: 'FP32', shape: [-1, limits.inputSize] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, limits.classes] },
      { name: 'label', datatype: 'INT64', shape: [-1] },
      { name: 'task', datatype: 'BYTES', shape: [-1] },
      { name: 'task_confidence', datatype: 'FP32', shape: [-1] },
      { name: 'task_unknown', datatype: 'BOOL', shape: [-1] },
    ],
    properties: {
      ...inputProperties(limits.inputSize),
      task: model.task ?? 'parameters.task names the task; omitted, the task is inferred from the inputs',
    },
  };
}
