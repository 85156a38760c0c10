/**
 * The shared task store (src/store/) against a real PostgreSQL started for this file: the store's own
 * guarantees (one winner per id, generations, the change log), copying a model in and out with every
 * mask verified, and two in-process replicas following one store. Skipped, with the reason, where
 * PostgreSQL is not installed. The cluster behaviours (load balancer, kills, store restarts) are in
 * test/system/cluster.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { SupsupError } from '../src/contract/errors.ts';
import { encodeRecord } from '../src/model/mask-file.ts';
import { loadModel } from '../src/model/model-store.ts';
import { storeCommand } from '../src/cli/commands/store.ts';
import { parseServeConfig } from '../src/service/config.ts';
import { pullInto, pushFrom } from '../src/store/model-copy.ts';
import { PostgresTaskStore } from '../src/store/postgres-task-store.ts';
import { parseStoreUrl } from '../src/store/store-url.ts';
import { writeRandomModel } from '../src/model/random-model.ts';
import { ADMIN_TOKEN, TINY, http, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';
import { skipReason, startPostgres, type TestPostgres } from './support/postgres.ts';

test('parseStoreUrl: the model parameter is split off, the password hidden, other schemes refused', () => {
  const a = parseStoreUrl('postgres://u:secret@db:5432/x?model=mnist&sslmode=disable');
  assert.equal(a.model, 'mnist');
  assert.equal(a.connectionString, 'postgres://u:secret@db:5432/x?sslmode=disable');
  assert.ok(!a.shown.includes('secret') && a.shown.includes('model=mnist'));
  assert.equal(parseStoreUrl('postgresql://db/x').model, 'default');
  assert.throws(() => parseStoreUrl('http://db/x'), /must start with postgres:\/\//);
  assert.throws(() => parseStoreUrl('postgres://db/x?model=a/b'), /model name/);
});

test('serve --store: needs --model (the local copy) and a postgres:// URL; store push|pull needs its arguments', async () => {
  assert.throws(() => parseServeConfig(['--store', 'postgres://db/x'], {}), /--store needs --model/);
  assert.throws(() => parseServeConfig(['--model', 'm', '--store', 'mysql://db/x'], {}), /--store \/ SUPSUP_STORE: .*postgres:\/\//);
  assert.equal(parseServeConfig(['--model', 'm'], { SUPSUP_STORE: 'postgres://db/x?model=a' }).store, 'postgres://db/x?model=a');
  await assert.rejects(storeCommand(['push', '--model', 'm']), /--store URL is required/);
  await assert.rejects(storeCommand(['sideways', '--model', 'm', '--store', 'postgres://db/x']), /push or pull/);
});

test('an unreachable store is "unavailable", with the reason', async () => {
  const store = new PostgresTaskStore(parseStoreUrl('postgres://supsup@127.0.0.1:1/supsup'));
  await assert.rejects(store.head(), (e: unknown) => e instanceof SupsupError && e.code === 'unavailable' && /task store is unreachable/.test(e.message));
  await store.close();
});

const skip = skipReason();
describe('against a real PostgreSQL', { skip }, () => {
  let db: TestPostgres;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let model: string;
  const stores: PostgresTaskStore[] = [];
  const storeFor = (name: string) => {
    const s = new PostgresTaskStore(parseStoreUrl(`${db.url}?model=${name}`));
    stores.push(s);
    return s;
  };

  before(async () => {
    db = await startPostgres();
    tmp = await tempDir('supsup-store-');
    model = await tinyModel(tmp.dir, 4);
  });
  after(async () => {
    for (const s of stores) await s.close();
    db?.remove();
    await tmp?.remove();
  });

  test('push then pull: the same tasks and the same mask bits; a second push adds nothing', async () => {
    const store = storeFor('roundtrip');
    assert.deepEqual(await pushFrom(model, store), { added: 4, removed: 0, refused: [] });
    assert.deepEqual(await pushFrom(model, store), { added: 0, removed: 0, refused: [] });
    const copy = `${tmp.dir}/pulled`;
    assert.deepEqual(await pullInto(copy, store, await store.snapshot()), { added: 4, removed: 0, refused: [] });
    const [a, b] = [await loadModel(model), await loadModel(copy)];
    assert.deepEqual([...b.masks.keys()], [...a.masks.keys()]);
    for (const [id, mask] of a.masks) assert.deepEqual(b.masks.get(id), mask);
    assert.deepEqual(b.manifest.tasks.map((t) => [t.id, t.addedAt, t.transform]), a.manifest.tasks.map((t) => [t.id, t.addedAt, t.transform]));
  });

  test('one winner per id: concurrent adds from two connections give one generation and one already_exists', async () => {
    const [s1, s2] = [storeFor('race'), storeFor('race')];
    await pushFrom(model, s1);
    const { masks } = await loadModel(model);
    const mask = masks.get('random-0')!;
    const item = { info: { id: 'same', name: 'same', addedAt: new Date().toISOString(), density: 0.5, transform: { kind: 'identity' as const } }, record: encodeRecord('same', mask) };
    const results = await Promise.allSettled([s1.addTasks([item]), s2.addTasks([item])]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.ok(lost[0].reason instanceof SupsupError && lost[0].reason.code === 'already_exists');
    const g = (won[0] as PromiseFulfilledResult<number>).value;
    assert.equal(g, 5, 'four pushed tasks, then this one');
    assert.equal(await s1.removeTask('same'), 6);
    await assert.rejects(s1.removeTask('same'), (e: unknown) => e instanceof SupsupError && e.code === 'not_found');
    assert.deepEqual((await s1.changesSince(4, 10)).map((c) => [c.generation, c.op, c.id]), [
      [5, 'add', 'same'],
      [6, 'remove', 'same'],
    ]);
  });

  test('the server ending a session between two queries does not crash the process; the store answers again after', async () => {
    const store = storeFor('roundtrip');
    const killer = new pg.Client({ connectionString: db.url });
    await killer.connect();
    try {
      // What a store restart does to a connection in use: the server ends it while no query is running on it.
      // `call` is the one place connections are checked out, so it is driven directly here.
      const call = (store as unknown as { call<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> }).call.bind(store);
      await assert.rejects(
        call(async (c) => {
          const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
          await killer.query('SELECT pg_terminate_backend($1)', [pid]);
          await new Promise((r) => setTimeout(r, 300));
          await c.query('SELECT 1');
        }),
        (e: unknown) => e instanceof SupsupError && e.code === 'unavailable',
      );
      assert.ok((await store.head())?.generation !== undefined, 'a fresh connection answers');
    } finally {
      await killer.end();
    }
  });

  test('a damaged blob is refused by pull, named, and not written', async () => {
    const store = storeFor('damaged');
    await pushFrom(model, store);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // Flip one bit near the end of random-2's payload.
    await client.query("UPDATE supsup_tasks SET record = set_byte(record, length(record) - 9, get_byte(record, length(record) - 9) # 4) WHERE model = 'damaged' AND id = 'random-2'");
    await client.end();
    const copy = `${tmp.dir}/damaged-copy`;
    const report = await pullInto(copy, store, await store.snapshot());
    assert.equal(report.added, 3);
    assert.deepEqual(report.refused.map((r) => r.id), ['random-2']);
    assert.match(report.refused[0].reason, /payload checksum mismatch/);
    assert.ok(!(await loadModel(copy)).masks.has('random-2'));
  });

  test('pull into a directory of another model is refused', async () => {
    const store = storeFor('roundtrip');
    await writeRandomModel(`${tmp.dir}/other-seed`, { architecture: TINY, seed: 99, tasks: 1, density: 0.5 });
    await assert.rejects(pullInto(`${tmp.dir}/other-seed`, store, await store.snapshot()), /holds another model/);
  });

  test('a change the engine refuses (written around the service) is refused and reported; the changes after it still apply', async () => {
    const url = `${db.url}?model=poison`;
    await pushFrom(model, storeFor('poison'));
    const replica = await startTestService(testConfig(`${tmp.dir}/poison-replica`, { store: url, adminToken: ADMIN_TOKEN }));
    try {
      const { masks } = await loadModel(model);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query('BEGIN');
        const g = Number((await client.query("UPDATE supsup_models SET generation = generation + 1 WHERE model = 'poison' RETURNING generation")).rows[0].generation);
        const info = { id: 'bogus', name: 'bogus', addedAt: new Date().toISOString(), density: 0.5, transform: { kind: 'no-such-transform' } };
        await client.query("INSERT INTO supsup_tasks (model, id, generation, info, record) VALUES ('poison', 'bogus', $1, $2, $3)", [g, info, encodeRecord('bogus', masks.get('random-0')!)]);
        await client.query("INSERT INTO supsup_changes (model, generation, op, id) VALUES ('poison', $1, 'add', 'bogus')", [g]);
        await client.query("SELECT pg_notify('supsup_changes', 'poison')");
        await client.query('COMMIT');
      } finally {
        await client.end();
      }
      const body = { mask: Buffer.from(masks.get('random-1')!.buffer).toString('base64') };
      const put = await http('PUT', `${replica.url}/tasks/after-bogus`, body, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      assert.equal((await http('GET', `${replica.url}/tasks/after-bogus`)).status, 200);
      assert.equal((await http('GET', `${replica.url}/tasks/bogus`)).status, 404);
      assert.match((await http('GET', `${replica.url}/readyz`)).body.reason, /1 task\(s\) refused .*bogus/);
      assert.match(await (await fetch(`${replica.url}/metrics`)).text(), /^supsup_store_refused_tasks_total 1$/m);
    } finally {
      await replica.close();
    }
  });

  test('two replicas on one store: a PUT on one is served by the other; a second PUT of the id is 409; DELETE reaches both', async () => {
    const url = `${db.url}?model=replicas`;
    await pushFrom(model, storeFor('replicas'));
    const config = (dir: string) => testConfig(`${tmp.dir}/${dir}`, { store: url, adminToken: ADMIN_TOKEN });
    const a = await startTestService(config('replica-a'));
    const b = await startTestService(config('replica-b'));
    try {
      const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
      const { masks } = await loadModel(model);
      const body = { mask: Buffer.from(masks.get('random-1')!.buffer).toString('base64'), name: 'copy of random-1' };
      assert.equal((await http('GET', `${b.url}/tasks`)).body.tasks.length, 4);
      const put = await http('PUT', `${a.url}/tasks/added`, body, auth);
      assert.equal(put.status, 201, JSON.stringify(put.body));
      assert.equal((await http('GET', `${a.url}/tasks/added`)).status, 200, 'live on the replica that took the PUT when it answers');
      await waitFor(async () => (await http('GET', `${b.url}/tasks/added`)).status === 200);
      const seen = (await http('GET', `${b.url}/tasks/added`)).body;
      assert.equal(seen.name, 'copy of random-1');
      assert.equal(seen.addedAt, put.body.addedAt, 'every replica shows the time the store took it');
      assert.equal((await http('PUT', `${b.url}/tasks/added`, body, auth)).status, 409);
      const bad = await http('PUT', `${b.url}/tasks/bad`, { mask: Buffer.alloc(8).toString('base64') }, auth);
      assert.equal(bad.status, 400, 'a wrong-sized mask is refused before it reaches the store');
      assert.equal((await http('DELETE', `${b.url}/tasks/added`, undefined, auth)).status, 204);
      await waitFor(async () => (await http('GET', `${a.url}/tasks/added`)).status === 404);
      assert.equal((await http('DELETE', `${a.url}/tasks/added`, undefined, auth)).status, 404);
      const ready = await http('GET', `${a.url}/readyz`);
      assert.deepEqual(ready.body, { ready: true });
      assert.match(await (await fetch(`${a.url}/metrics`)).text(), /^supsup_store_up 1$/m);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

async function waitFor(probe: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
