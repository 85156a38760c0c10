import type { Architecture } from '../core/architecture.ts';
import type { ClassifyCall, ClassifyLimits } from '../core/classify-request.ts';
import type { Prediction } from '../core/engine.ts';
import type { EngineErrorCode } from '../core/engine-error.ts';
import type { TaskTransform } from '../data/transforms.ts';
import type { Normalization } from '../model/manifest.ts';
import type { KernelPreference } from '../core/kernels/select-kernels.ts';
import type { BackendPreference } from './backend.ts';

/**
 * Messages between the main thread and the engine worker (engine-worker.ts). Each request carries a
 * sequence number `seq`; each reply echoes it with a result or an error, plus the worker's live tensor count.
 */

/** What the service shows of a task (the manifest entry without its file record number). */
export interface TaskInfo {
  id: string;
  name: string;
  description?: string;
  addedAt: string;
  density: number;
  transform: TaskTransform;
}

export interface ModelInfo {
  dir: string;
  architecture: Architecture;
  seed: number;
  normalization: Normalization;
  limits: ClassifyLimits;
  /** Where limits.epsilon came from (the --epsilon setting, the model's manifest, or the default). */
  epsilonSource: string;
  tasks: TaskInfo[];
  maskBankBytes: number;
  backend: { name: string; reason: string };
  kernels: { name: string; reason: string };
}

export interface NewTaskRequest {
  id: string;
  name: string;
  description?: string;
  transform: TaskTransform;
  /** ISO 8601 UTC; unset: now. Set by replicas, so every copy of a task shows the same time. */
  addedAt?: string;
  /** Canonical packed mask: P bits, little-endian 32-bit words, bit w of the mask = bit (w & 31) of word w >>> 5. */
  mask: Uint32Array;
}

export type WorkerRequest =
  | { op: 'open'; dir: string; backend: BackendPreference; kernels: KernelPreference; maxBatch: number; epsilon?: number }
  | { op: 'classify'; call: ClassifyCall }
  | { op: 'addTask'; task: NewTaskRequest }
  | { op: 'removeTask'; id: string };

export interface ClassifyResult {
  predictions: Prediction[];
  /** Engine compute time of the pass, seconds. */
  seconds: number;
}

export interface WorkerResults {
  open: ModelInfo;
  classify: ClassifyResult;
  addTask: { task: TaskInfo; maskBankBytes: number };
  removeTask: { maskBankBytes: number; warning?: string };
}

export type WorkerReply =
  | { seq: number; ok: true; result: unknown; tensors: number }
  | { seq: number; ok: false; error: { code: EngineErrorCode; message: string }; tensors: number };

export function taskInfo(t: TaskInfo & { record?: number }): TaskInfo {
  const { id, name, description, addedAt, density, transform } = t;
  return { id, name, ...(description !== undefined ? { description } : {}), addedAt, density, transform };
}
