// Task listing in pages (GET /tasks?limit=&pageToken=&view=, gRPC ListTasks page_size/page_token/view) on a real
// server: id order, every task once while tasks are added and removed between pages, basic view, bad input refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { maskWords } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { randomMask } from '../src/model/random-model.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, unary } from './support/grpc-calls.ts';
import { ADMIN_TOKEN, TINY, type TestService, http, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('task pages', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let client: DynamicClient;
  const rng = new Xoshiro128(77);

  const put = async (id: string) => {
    const mask = randomMask(TINY, 0.5, rng);
    assert.equal(mask.length, maskWords(TINY));
    const r = await http('PUT', `${service.url}/tasks/${id}`, { mask: Buffer.from(mask.buffer).toString('base64'), transform: { kind: 'rotation', degrees: 5 } }, admin);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  };
  const del = async (id: string) => assert.equal((await http('DELETE', `${service.url}/tasks/${id}`, undefined, admin)).status, 204);

  before(async () => {
    tmp = await tempDir();
    const dir = await tinyModel(tmp.dir, 0);
    service = await startTestService(testConfig(dir, { adminToken: ADMIN_TOKEN }));
    for (const id of ['m', 'c', 'x', 'a', 'q', 'f', 'z', 'k']) await put(id);
    const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as any;
    client = new pkg.supsup.v1.Classifier(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await service?.close();
    await tmp?.remove();
  });

  it('without limit or pageToken: every task in the order added, as before; with them: pages in id order', async () => {
    const all = await http('GET', `${service.url}/tasks`);
    assert.deepEqual(all.body.tasks.map((t: { id: string }) => t.id), ['m', 'c', 'x', 'a', 'q', 'f', 'z', 'k']);
    assert.equal(all.body.nextPageToken, undefined);
    const ids: string[][] = [];
    let token: string | undefined;
    do {
      const r = await http('GET', `${service.url}/tasks?limit=3${token ? `&pageToken=${token}` : ''}`);
      assert.equal(r.status, 200);
      ids.push(r.body.tasks.map((t: { id: string }) => t.id));
      assert.ok(r.body.tasks.every((t: { transform?: unknown }) => t.transform !== undefined), 'full view by default');
      token = r.body.nextPageToken;
    } while (token);
    assert.deepEqual(ids, [['a', 'c', 'f'], ['k', 'm', 'q'], ['x', 'z']]);
    const exact = await http('GET', `${service.url}/tasks?limit=8`);
    assert.equal(exact.body.tasks.length, 8);
    assert.equal(exact.body.nextPageToken, undefined, 'no token when nothing more remains');
  });

  it('tasks added and removed between pages: every task present throughout appears exactly once, none twice', async () => {
    const first = await http('GET', `${service.url}/tasks?limit=4`);
    assert.deepEqual(first.body.tasks.map((t: { id: string }) => t.id), ['a', 'c', 'f', 'k']);
    await put('b'); // before the position: not seen
    await put('y'); // after it: seen
    await del('c'); // already listed
    await del('q'); // not yet listed: gone
    const rest: string[] = [];
    for (let token = first.body.nextPageToken; token; ) {
      const r = await http('GET', `${service.url}/tasks?limit=2&pageToken=${token}`);
      rest.push(...r.body.tasks.map((t: { id: string }) => t.id));
      token = r.body.nextPageToken;
    }
    assert.deepEqual(rest, ['m', 'x', 'y', 'z']);
    // The token names a position, so it outlives the task it was taken after.
    await del('k');
    const after = await http('GET', `${service.url}/tasks?limit=10&pageToken=${first.body.nextPageToken}`);
    assert.deepEqual(after.body.tasks.map((t: { id: string }) => t.id), ['m', 'x', 'y', 'z']);
    await put('c');
    await put('q');
    await put('k');
    await del('b');
    await del('y');
  });

  it('view=basic leaves out the transforms; the full view has them', async () => {
    const basic = await http('GET', `${service.url}/tasks?view=basic`);
    assert.equal(basic.body.tasks.length, 8);
    for (const t of basic.body.tasks) {
      assert.equal(t.transform, undefined);
      assert.equal(typeof t.density, 'number');
      assert.equal(typeof t.addedAt, 'string');
    }
    const page = await http('GET', `${service.url}/tasks?limit=2&view=basic`);
    assert.deepEqual(Object.keys(page.body.tasks[0]).sort(), ['addedAt', 'density', 'id', 'name']);
    const full = await http('GET', `${service.url}/tasks?limit=2&view=full`);
    assert.deepEqual(full.body.tasks[0].transform, { kind: 'rotation', degrees: 5 });
  });

  it('the whole list, written in pieces, is the JSON the pages give: permutations included, in the order added', async () => {
    // 150 permutation tasks: several of the listing's pieces (64 tasks each), each with 784 indices.
    const ids = Array.from({ length: 150 }, (_, i) => `p${String(i).padStart(3, '0')}`);
    const earlier = (await http('GET', `${service.url}/tasks`)).body.tasks.map((t: { id: string }) => t.id);
    const permutations = new Map<string, number[]>();
    for (const [i, id] of ids.entries()) {
      const permutation = Array.from({ length: TINY.inputSize }, (_, j) => j);
      for (let j = permutation.length - 1; j > 0; j--) {
        const r = rng.nextInt(j + 1);
        [permutation[j], permutation[r]] = [permutation[r], permutation[j]];
      }
      permutations.set(id, permutation);
      const mask = randomMask(TINY, 0.5, rng);
      const body = { mask: Buffer.from(mask.buffer).toString('base64'), transform: { kind: 'permutation', seed: i, permutation } };
      assert.equal((await http('PUT', `${service.url}/tasks/${id}`, body, admin)).status, 201);
    }
    try {
      for (const view of ['full', 'basic']) {
        const all = await http('GET', `${service.url}/tasks?view=${view}`);
        assert.equal(all.status, 200);
        assert.match(all.headers.get('content-type') ?? '', /^application\/json/);
        const tasks = (all.body as { tasks: { id: string; transform?: { permutation?: number[] } }[] }).tasks;
        assert.deepEqual(tasks.map((t) => t.id), [...earlier, ...ids], 'every task once, in the order added');
        const page = await http('GET', `${service.url}/tasks?limit=1000&view=${view}`);
        assert.deepEqual([...tasks].sort((a, b) => (a.id < b.id ? -1 : 1)), page.body.tasks, 'the same tasks, field for field, as the schema-written page');
        if (view === 'full') for (const id of ids) assert.deepEqual(tasks.find((t) => t.id === id)!.transform!.permutation, permutations.get(id));
      }
    } finally {
      for (const id of ids) await del(id);
    }
  });

  it('bad limits, tokens and views are refused with 400 invalid_argument', async () => {
    for (const q of ['limit=-1', 'limit=1001', 'limit=abc', 'limit=2.5', 'pageToken=nonsense', 'pageToken=%21%21', `pageToken=${Buffer.from('tasks-v1:a b').toString('base64url')}`, 'view=everything']) {
      const r = await http('GET', `${service.url}/tasks?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, 'invalid_argument', q);
    }
  });

  it('gRPC ListTasks pages the same way, with the same tokens', async () => {
    const all = await unary(client, 'ListTasks', {});
    assert.equal(all.tasks.length, 8);
    assert.equal(all.next_page_token, '');
    const p1 = await unary(client, 'ListTasks', { page_size: 5, view: 'basic' });
    assert.deepEqual(p1.tasks.map((t: { id: string }) => t.id), ['a', 'c', 'f', 'k', 'm']);
    assert.ok(p1.tasks.every((t: { transform_json: string }) => t.transform_json === ''));
    const rest = await http('GET', `${service.url}/tasks?limit=5&pageToken=${p1.next_page_token}`);
    assert.deepEqual(rest.body.tasks.map((t: { id: string }) => t.id), ['q', 'x', 'z']);
    const p2 = await unary(client, 'ListTasks', { page_size: 5, page_token: p1.next_page_token });
    assert.deepEqual(p2.tasks.map((t: { id: string }) => t.id), ['q', 'x', 'z']);
    assert.equal(JSON.parse(p2.tasks[0].transform_json).kind, 'rotation');
    assert.equal(p2.next_page_token, '');
    await assert.rejects(unary(client, 'ListTasks', { page_token: 'bogus' }), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT);
  });
});
