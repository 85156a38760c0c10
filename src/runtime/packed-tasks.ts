// The task list of the engine worker's open reply, its permutations moved into one typed array. A structured clone
// copies a number[] element by element, a typed array as bytes: at k = 2500 (2500 × 784 numbers) the clone of the
// plain list cost ~0.1-0.15 s of CPU on the two threads, on the path to ready. The receiving side gives each
// permutation transform a `permutation` made from those bytes when it is read (a task listing), so the reply is
// read in milliseconds and what is served stays the same.
import type { TaskInfo } from '../contract/task.ts';

export interface PackedTasks {
  /** The tasks, each permutation transform's `permutation` left empty (its key kept, so key order is unchanged). */
  tasks: TaskInfo[];
  /** The permutations one after another, in task order. */
  values: Uint16Array | Uint32Array;
  /** Where each permutation ends in `values`, in task order. */
  ends: Uint32Array;
}

/** Fresh task objects (the caller's are not changed) with the permutations packed. */
export function packTasks(tasks: readonly TaskInfo[]): PackedTasks {
  const permutations: number[][] = [];
  const slim = tasks.map((t): TaskInfo => {
    if (t.transform.kind !== 'permutation') return t;
    permutations.push(t.transform.permutation);
    return { ...t, transform: { ...t.transform, permutation: [] } };
  });
  const ends = new Uint32Array(permutations.length);
  let n = 0;
  permutations.forEach((p, i) => (ends[i] = n += p.length));
  // 16 bits hold every index of an image up to 65536 pixels; a wider one takes 32.
  const values = packInto(new Uint16Array(n), permutations) ?? packInto(new Uint32Array(n), permutations)!;
  return { tasks: slim, values, ends };
}

/** The permutations one after another in `out`, or null where a value does not fit its elements. */
function packInto<T extends Uint16Array | Uint32Array>(out: T, permutations: number[][]): T | null {
  const limit = out instanceof Uint16Array ? 0xffff : 0xffffffff;
  let at = 0;
  for (const p of permutations) {
    for (let i = 0; i < p.length; i++) {
      if (p[i] > limit) return null;
      out[at + i] = p[i];
    }
    at += p.length;
  }
  return out;
}

/**
 * packTasks undone in place: each permutation is made from `values` on every read, a fresh array, and never kept.
 * Kept, one full task listing would pin every permutation as a JavaScript array for good (k = 2500: 2500 × 784
 * numbers, ~16 MB of the main thread's heap); made per read, a listing leaves only young garbage. An assigned
 * permutation replaces the packed one.
 */
export function unpackTasks({ tasks, values, ends }: PackedTasks): TaskInfo[] {
  let p = 0;
  for (const t of tasks) {
    if (t.transform.kind !== 'permutation') continue;
    const transform = t.transform;
    const packed = values.subarray(p === 0 ? 0 : ends[p - 1], ends[p]);
    p++;
    Object.defineProperty(transform, 'permutation', {
      enumerable: true,
      configurable: true,
      get: (): number[] => Array.from(packed),
      set(permutation: number[]) {
        Object.defineProperty(transform, 'permutation', { value: permutation, enumerable: true, writable: true, configurable: true });
      },
    });
  }
  return tasks;
}
