// Triton's model repository extension (docs/protocol/extension_model_repository.md) over this server's models
// (models.ts): the main model and one per stored task, all loaded together from the one model directory. Index
// lists them with the engine's state; load of a model that exists succeeds (it is loaded), of one that does not
// says how to add a task; unload is refused, since a task is removed with DELETE /tasks/{id} (the admin API).
import { SupsupError } from '../../contract/errors.ts';
import type { EngineState } from '../../runtime/model-runtime.ts';
import type { ServiceContext } from '../context.ts';
import { OIP_VERSION, resolveOipModel, serviceModels } from './models.ts';

export interface ModelIndexEntry {
  name: string;
  version: string;
  state: string;
  reason: string;
}

/** Triton's model states for the engine's, and why when not READY. */
const STATES: Record<EngineState, { state: string; reason: string }> = {
  ready: { state: 'READY', reason: '' },
  starting: { state: 'LOADING', reason: 'the model is loading' },
  restarting: { state: 'UNAVAILABLE', reason: 'the engine worker stopped and is being restarted' },
  failed: { state: 'UNAVAILABLE', reason: 'the engine worker could not be restarted' },
  closed: { state: 'UNLOADING', reason: 'the server is shutting down' },
};

/** The main model's name and every task's id, in that order (tasks sorted by id). */
export function modelNames(ctx: ServiceContext): string[] {
  const tasks = ctx.runtime.loaded ? ctx.runtime.tasks().map((t) => t.id).sort() : [];
  return [ctx.config.modelName, ...tasks.filter((id) => id !== ctx.config.modelName)];
}

/** $repository_index_response / RepositoryIndexResponse.models; `readyOnly`: only models ready for inference. */
export function repositoryIndex(ctx: ServiceContext, readyOnly: boolean): ModelIndexEntry[] {
  const { state, reason } = STATES[ctx.runtime.state];
  if (readyOnly && state !== 'READY') return [];
  return modelNames(ctx).map((name) => ({ name, version: OIP_VERSION, state, reason }));
}

/** Load: every model here is loaded with the server; one that does not exist cannot be loaded this way. */
export function loadModel(ctx: ServiceContext, name: string): void {
  try {
    resolveOipModel(serviceModels(ctx), name);
  } catch {
    throw new SupsupError('not_found', `no model "${name}" to load: the models here are "${ctx.config.modelName}" and one per stored task; add a task with PUT /tasks/{id}`);
  }
}

/** Unload: refused; the models here live as long as the server (a task goes with DELETE /tasks/{id}). */
export function unloadModel(ctx: ServiceContext, name: string): never {
  resolveOipModel(serviceModels(ctx), name);
  throw new SupsupError('failed_precondition', `model "${name}" cannot be unloaded: the models here are loaded with the server; remove a task with DELETE /tasks/{id}`);
}
