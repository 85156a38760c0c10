/**
 * The engine worker's open reply carries its task list packed (runtime/packed-tasks.ts): after a real structured
 * clone (a MessageChannel, as between the worker and the main thread) and unpacking, every task reads, serialises and
 * clones exactly as the plain list did, and packing leaves the sender's tasks alone; a served model's permutation
 * tasks come back whole through REST and gRPC.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { TaskInfo, TaskSpec } from '../src/contract/task.ts';
import { permutedTask, rotatedTask, splitTask } from '../src/data/transforms.ts';
import { readManifest } from '../src/model/model-store.ts';
import { writeRandomModel } from '../src/model/random-model.ts';
import { type PackedTasks, packTasks, unpackTasks } from '../src/runtime/packed-tasks.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { unary } from './support/grpc-calls.ts';
import { TINY, http, startTestService, tempDir, testConfig } from './support/service-fixture.ts';

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

  it('makes a fresh permutation on every read, keeping none, and keeps what is assigned', () => {
    const tasks = unpackTasks(cloned(packTasks(TASKS)));
    const t = tasks[0].transform as { permutation: number[] };
    const first = t.permutation;
    assert.ok(Array.isArray(first));
    assert.notEqual(t.permutation, first, 'a new array on the second read: a listing pins none of them');
    assert.deepEqual(t.permutation, first);
    first[0] = -1;
    assert.notEqual(t.permutation[0], -1, 'changing a read copy changes nothing served');
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

describe('a served model’s permutation tasks', () => {
  it('come back whole through REST and gRPC after the packed open reply', async () => {
    const tmp = await tempDir('supsup-packed-');
    const specs: TaskSpec[] = [0, 1, 2].map((i) => ({ id: `p${i}`, name: `Permuted ${i}`, transform: permutedTask(i) }));
    specs.splice(1, 0, { id: 'r', name: 'Rotated', transform: rotatedTask(2) });
    const dir = join(tmp.dir, 'model');
    await writeRandomModel(dir, { architecture: TINY, seed: 3, tasks: specs, density: 0.5 });
    const stored = new Map((await readManifest(dir)).tasks.map((t) => [t.id, t.transform]));
    const service = await startTestService(testConfig(dir));
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    const client = new pkg.supsup.v1.Classifier(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const one = await http('GET', `${service.url}/tasks/p2`);
      assert.deepEqual(one.body.transform, stored.get('p2'));
      const all = await http('GET', `${service.url}/tasks`);
      assert.deepEqual(new Map(all.body.tasks.map((t: TaskInfo) => [t.id, t.transform])), stored);
      const listed = await unary(client, 'ListTasks', {});
      assert.deepEqual(new Map(listed.tasks.map((t: any) => [t.id, JSON.parse(t.transform_json)])), stored);
    } finally {
      client.close();
      await service.close();
      await tmp.remove();
    }
  });
});
