// Messages between the main thread and the engine worker (engine-worker.ts). Each request carries a
// sequence number `seq`; each reply echoes it with a result or an error, plus the worker's live tensor count.
import type { BackendPreference, KernelPreference } from '../platform/preferences.ts';
import type { ClassifyCall, ClassifyLimits, Prediction } from '../contract/classify.ts';
import type { ErrorCode } from '../contract/errors.ts';
import type { ModelSpec } from '../contract/model.ts';
import type { TaskInfo, TaskSpec } from '../contract/task.ts';
import type { PackedTasks } from './packed-tasks.ts';

export interface ModelInfo extends ModelSpec {
  dir: string;
  limits: ClassifyLimits;
  /** Where limits.epsilon came from (the --epsilon setting, the model's manifest, or the default). */
  epsilonSource: string;
  tasks: TaskInfo[];
  maskBankBytes: number;
  backend: { name: string; reason: string };
  kernels: { name: string; reason: string };
  /** Where given-task passes run from the bits: the bank and each task's slot, for the runtime's inline calls. */
  sharedBank?: SharedBank;
}

/** open's reply: the ModelInfo with its task list packed (packed-tasks.ts). */
export type OpenedModel = Omit<ModelInfo, 'tasks'> & { tasks: PackedTasks };

/**
 * The engine's bank (shared memory: the same bytes in both threads, never a copy) and the slot of every task in
 * it, so the main thread can run small given-task calls itself (inline-given.ts).
 */
export interface SharedBank {
  bank: Uint32Array;
  slots: Record<string, number>;
}

export type WorkerRequest =
  | { op: 'open'; dir: string; backend: BackendPreference; kernels: KernelPreference; maxBatch: number; epsilon?: number; rerank?: number }
  | { op: 'classify'; call: ClassifyCall }
  /** One given-task and one inferred-task pass on zeros, so the first real request pays no compile cost. */
  | { op: 'warmUp' }
  | { op: 'addTask'; task: TaskSpec; mask: Uint32Array }
  | { op: 'removeTask'; id: string };

export interface ClassifyResult {
  predictions: Prediction[];
  /** Engine compute time of the pass, seconds. */
  seconds: number;
}

export interface WorkerResults {
  open: OpenedModel;
  classify: ClassifyResult;
  warmUp: void;
  /** shared: the bank as of this add (it may have grown) and the new task's slot, where the bank is shared. */
  addTask: { task: TaskInfo; maskBankBytes: number; shared?: { bank: Uint32Array; slot: number } };
  removeTask: { maskBankBytes: number; warning?: string };
}

export type WorkerReply =
  | { seq: number; ok: true; result: unknown; tensors: number }
  | { seq: number; ok: false; error: { code: ErrorCode; message: string }; tensors: number };
