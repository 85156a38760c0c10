// What a task is, in the three shapes that differ for a reason: what a caller gives (TaskSpec), what the
// service shows (TaskInfo), and what the manifest stores (model/manifest.ts TaskEntry: TaskInfo + its record).
// The task-id rule lives here too.
import { invalid } from './errors.ts';

/**
 * The data transform that defines a task, plain JSON stored in the manifest (data/transforms.ts applies
 * and validates it): identity; permutation (output pixel i = input pixel permutation[i]; `seed` records how
 * it was made); rotation by `degrees`; split (keep the examples of `classes`, relabelled 0..n−1).
 */
export type TaskTransform =
  | { kind: 'identity' }
  | { kind: 'permutation'; seed: number; permutation: number[] }
  | { kind: 'rotation'; degrees: number }
  | { kind: 'split'; classes: number[] };

/**
 * Task ids: ASCII, so an id's bytes (in the masks file's record headers) are its characters; only URL-unreserved
 * characters, so an id is one path segment as it stands (/tasks/{id}, /v2/models/{id}); and not `.` or `..`,
 * the two segments a URL cannot carry (clients and servers resolve them away before routing).
 */
export const TASK_ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/;

export function isTaskId(id: unknown): id is string {
  return typeof id === 'string' && TASK_ID_PATTERN.test(id);
}

/** The id itself, or invalid_argument. */
export function checkTaskId(id: unknown): string {
  if (!isTaskId(id)) throw invalid(`task id ${JSON.stringify(id)} must match ${TASK_ID_PATTERN}: 1 to 64 letters, digits, _ . -, and not . or .. alone`);
  return id;
}

/** A new task as a caller describes it (its mask travels beside it). */
export interface TaskSpec {
  id: string;
  name: string;
  description?: string;
  transform: TaskTransform;
  /** ISO 8601 UTC time it was added; the model store sets now when absent. */
  addedAt?: string;
}

/** A stored task as the service shows it. */
export interface TaskInfo extends TaskSpec {
  addedAt: string;
  /** Fraction of the P mask bits that are 1. */
  density: number;
}

/** The TaskInfo of a stored entry (drops what only the file format needs). */
export function taskInfo(t: TaskInfo & { record?: number }): TaskInfo {
  const { id, name, description, addedAt, density, transform } = t;
  return { id, name, ...(description !== undefined ? { description } : {}), addedAt, density, transform };
}
