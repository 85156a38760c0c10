/**
 * The engine worker's open reply carries its task list packed (runtime/packed-tasks.ts): after a real structured
 * clone (a MessageChannel, as between the worker and the main thread) and unpacking, every task reads, serialises and
 * clones exactly as the plain list did, and packing leaves the sender's tasks alone.
 */
import assert from 'node:assert/strict';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, it } from 'node:test';
import type { TaskInfo } from '../src/contract/task.ts';
import { permutedTask, rotatedTask, splitTask } from '../src/data/transforms.ts';
import { type PackedTasks, packTasks, unpackTasks } from '../src/runtime/packed-tasks.ts';

const task = (id: string, transform: TaskInfo['transform'], description?: string): TaskInfo => ({
  id,
  name: `task ${id}`,
  ...(description ? { description } : {}),
  addedAt: '2026-12-02T12:00:00.000Z',
  density: 0.5,
  transform,
});

/** Through a MessageChannel: the copy another thread would get. */
function cloned<T>(value: T): T {
  const { port1, port2 } = new MessageChannel();
  try {
    port1.postMessage(value);
    return receiveMessageOnPort(port2)!.message as T;
  } finally {
    port1.close();
  }
}

const TASKS: TaskInfo[] = [
  task('p0', permutedTask(0)),
  task('id', { kind: 'identity' }, 'no transform'),
  task('p1', permutedTask(1, 10)),
  task('r', rotatedTask(3)),
  task('s', splitTask(2)),
  task('p2', permutedTask(2)),
];

describe('packed task list', () => {
  it('reads, serialises and clones as the plain list after a clone and unpacking', () => {
    const before = JSON.stringify(TASKS);
    const packed = packTasks(TASKS);
    assert.equal(JSON.stringify(TASKS), before, 'the sender’s tasks are not changed');
    assert.ok(packed.values instanceof Uint16Array);
    assert.deepEqual([...packed.ends], [784, 794, 1578]);
    const tasks = unpackTasks(cloned(packed));
    assert.equal(JSON.stringify(tasks), before);
    assert.deepEqual(tasks, TASKS);
    assert.deepEqual(structuredClone(tasks), TASKS);
    assert.deepEqual(tasks.map((t) => ({ ...t, transform: { ...t.transform } })), TASKS);
  });

  it('makes a permutation once, on its first read, and keeps what is assigned', () => {
    const tasks = unpackTasks(cloned(packTasks(TASKS)));
    const t = tasks[0].transform as { permutation: number[] };
    const first = t.permutation;
    assert.equal(t.permutation, first, 'the same array on the second read');
    assert.ok(Array.isArray(first));
    const mine = [...first].reverse();
    const other = tasks[2].transform as { permutation: number[] };
    other.permutation = mine;
    assert.equal(other.permutation, mine);
    assert.deepEqual(Object.keys(tasks[5].transform), ['kind', 'seed', 'permutation']);
  });

  it('keeps indices past 16 bits', () => {
    const wide = task('w', { kind: 'permutation', seed: 0, permutation: [70000, 0, 65536, 65535] });
    const packed: PackedTasks = packTasks([wide]);
    assert.ok(packed.values instanceof Uint32Array);
    assert.deepEqual(unpackTasks(cloned(packed)), [wide]);
  });

  it('packs a list without permutations', () => {
    const plain = [task('a', { kind: 'identity' })];
    assert.deepEqual(unpackTasks(cloned(packTasks(plain))), plain);
    assert.deepEqual(unpackTasks(cloned(packTasks([]))), []);
  });
});
