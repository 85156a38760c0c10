/**
 * Cluster system test, run by .ci/run: a real replicated deployment on 127.0.0.1 started by
 * deploy/local/cluster.sh (PostgreSQL, three `supsup serve --store` replicas, HAProxy), then, through the
 * load balancer:
 *
 * 1. steady mixed traffic (classify with the task given and inferred, task reads) the whole time;
 * 2. tasks added through the LB are served by every replica within 1 s (p99 reported);
 * 3. one replica SIGKILLed and restarted mid-run: 0 failed requests out of >= 2,000, and every replica
 *    ends with the store's task set (0 tasks lost, the restarted one included);
 * 4. the same id PUT on two replicas at once: one 201, one 409;
 * 5. the store stopped and started during writes: replicas keep serving and say so, changes answer 503,
 *    and every acknowledged task is there afterwards (0 lost);
 * 6. a corrupt mask blob in the store: refused and reported by every replica, never served.
 *
 *   node --import tsx test/system/cluster.ts
 *
 * Prints `ok`/`not ok` per check and closes with `cluster: N passed, M failed`; exit 1 on any failure.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pg from 'pg';
import { encodeRecord } from '../../src/model/mask-file.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../../src/service/grpc/server.ts';
import { parseStoreUrl } from '../../src/store/store-url.ts';
import { unary } from '../support/grpc-calls.ts';
import { assert, CheckFailure, fetchJson, run, Suite, waitUntil } from './harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLUSTER_SH = join(ROOT, 'deploy/local/cluster.sh');
const CLUSTER_DIR = join(tmpdir(), `supsup-cluster-test-${process.pid}`);
const TOTAL_TIMEOUT_MS = Number(process.env.CLUSTER_TIMEOUT_MS ?? 480_000);
/** P of models/example-lenet (784-300-100-100): 8,600 words, a 34,400-byte mask. */
const MASK_WORDS = 8600;
const MIN_REQUESTS = 2000;
const PROPAGATION_SAMPLES = 40;

interface Cluster {
  lb: { http: string; grpc: string };
  replicas: { http: string; grpc: string; pid: number }[];
  adminToken: string;
  store: string;
  dir: string;
}

const suite = new Suite();
const env = { ...process.env, SUPSUP_CLUSTER_DIR: CLUSTER_DIR };
let cluster: Cluster | undefined;

const watchdog = setTimeout(() => {
  suite.fail('the whole cluster run', new CheckFailure(`still running after ${TOTAL_TIMEOUT_MS} ms: stopped`));
  void finish();
}, TOTAL_TIMEOUT_MS);

function sh(...args: string[]) {
  return run('bash', [CLUSTER_SH, ...args], { env, timeoutMs: 300_000 });
}

const auth = () => ({ authorization: `Bearer ${cluster!.adminToken}`, 'content-type': 'application/json' });

function randomMask(): Uint32Array {
  const m = new Uint32Array(MASK_WORDS);
  for (let i = 0; i < m.length; i++) m[i] = (Math.random() * 2 ** 32) >>> 0;
  return m;
}

async function putTask(base: string, id: string, timeoutMs = 15_000): Promise<number> {
  const mask = Buffer.from(randomMask().buffer).toString('base64');
  const r = await fetch(`${base}/tasks/${id}`, { method: 'PUT', headers: auth(), body: JSON.stringify({ mask }), signal: AbortSignal.timeout(timeoutMs) });
  await r.arrayBuffer();
  return r.status;
}

const example = Array.from({ length: 784 }, (_, i) => ((i * 37) % 255) / 255);

async function classify(base: string, task?: string): Promise<number> {
  const r = await fetch(`${base}/classify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [example], ...(task ? { task } : {}) }),
    signal: AbortSignal.timeout(10_000),
  });
  await r.arrayBuffer();
  return r.status;
}

async function taskIds(base: string): Promise<string[]> {
  const r = await fetchJson(`${base}/tasks`);
  assert(r.status === 200, `GET ${base}/tasks answered ${r.status}`);
  return (r.body.tasks as { id: string }[]).map((t) => t.id).sort();
}

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** Steady mixed traffic through the LB from `workers` loops; every answer that is not 2xx is a failure. */
class Traffic {
  ok = 0;
  failures: string[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly base: string, private readonly tasks: string[]) {}

  get total(): number {
    return this.ok + this.failures.length;
  }

  start(workers: number): void {
    for (let w = 0; w < workers; w++) this.loops.push(this.loop(w));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  private async loop(w: number): Promise<void> {
    for (let i = w; !this.stopped; i++) {
      const kind = i % 3;
      const what = kind === 0 ? 'classify (task given)' : kind === 1 ? 'classify (task inferred)' : 'GET /tasks';
      try {
        const status =
          kind === 0 ? await classify(this.base, this.tasks[i % this.tasks.length]) : kind === 1 ? await classify(this.base) : (await fetchJson(`${this.base}/tasks`)).status;
        if (status >= 200 && status < 300) this.ok++;
        else this.failures.push(`${what}: HTTP ${status}`);
      } catch (e) {
        this.failures.push(`${what}: ${(e as Error).message}`);
      }
    }
  }
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main(): Promise<void> {
  const up = await suite.check(
    'cluster.sh up: PostgreSQL, three replicas and HAProxy turn ready; the last line is the JSON summary',
    async () => {
      const r = await sh('up');
      assert(r.code === 0, `cluster.sh up exited ${r.code}:\n${r.stderr.slice(-2000)}`);
      const last = r.stdout.trim().split('\n').pop()!;
      const c = JSON.parse(last) as Cluster;
      assert(c.lb?.http && c.lb.grpc && c.replicas?.length === 3 && c.adminToken, `summary lacks fields: ${last}`);
      for (const rep of c.replicas) assert(Number.isInteger(rep.pid) && rep.http && rep.grpc, `bad replica entry ${JSON.stringify(rep)}`);
      return c;
    },
    300_000,
  );
  if (!up) return;
  cluster = up;
  const lb = cluster.lb.http;
  const replicas = cluster.replicas.map((r) => r.http);
  const baseTasks = await taskIds(lb);
  const traffic = new Traffic(lb, baseTasks);
  traffic.start(4);

  await suite.check(
    `a task PUT through the LB is served by every replica within 1 s (p99 of ${PROPAGATION_SAMPLES})`,
    async () => {
      const delays: number[] = [];
      for (let i = 0; i < PROPAGATION_SAMPLES; i++) {
        const id = `prop-${i}`;
        assert((await putTask(lb, id)) === 201, `PUT ${id} was not 201`);
        const acked = performance.now();
        const seen = await Promise.all(
          replicas.map(async (r) => {
            // GET /tasks/:id answers 200 once the engine holds the task (the runtime lists it only then); polled
            // rather than classify so the probe itself does not queue forward passes on a busy machine.
            await waitUntil(async () => ((await fetchJson(`${r}/tasks/${id}`)).status === 200 ? true : undefined), 5000, `${id} on ${r}`, 20);
            const at = performance.now() - acked;
            assert((await classify(r, id)) === 200, `${r} lists ${id} but does not classify with it`);
            return at;
          }),
        );
        delays.push(Math.max(...seen));
      }
      delays.sort((a, b) => a - b);
      const p50 = percentile(delays, 0.5);
      const p99 = percentile(delays, 0.99);
      assert(p99 <= 1000, `p99 propagation ${p99.toFixed(0)} ms > 1000 ms (all: ${delays.map((d) => d.toFixed(0)).join(', ')})`);
      return `propagation after the 201, to all three replicas: p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${delays.at(-1)!.toFixed(0)} ms`;
    },
    120_000,
  );

  await suite.check('gRPC through the LB (HTTP/2 frontend): ListTasks on 6 fresh connections sees every added task', async () => {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    for (let i = 0; i < 6; i++) {
      const client = new pkg.supsup.v1.Classifier(cluster!.lb.grpc, grpc.credentials.createInsecure());
      try {
        const r = await unary(client, 'ListTasks', {});
        const ids = (r.tasks as { id: string }[]).map((t) => t.id);
        assert(ids.includes(`prop-${PROPAGATION_SAMPLES - 1}`), `connection ${i}: ListTasks lacks prop-${PROPAGATION_SAMPLES - 1} (${ids.length} tasks)`);
      } finally {
        client.close();
      }
    }
    return '6 of 6';
  });

  await suite.check(
    'replica 2 SIGKILLed mid-traffic (a task added while it is down), restarted: it converges',
    async () => {
      const r1 = await sh('replica', '2', 'kill');
      assert(r1.code === 0, `kill failed: ${r1.stderr}`);
      await new Promise((r) => setTimeout(r, 1500));
      assert((await putTask(lb, 'while-down')) === 201, 'PUT while-down through the LB was not 201 with a replica down');
      const r2 = await sh('replica', '2', 'start');
      assert(r2.code === 0, `restart failed: ${r2.stderr}`);
      cluster!.replicas[1].pid = Number(r2.stdout.trim());
      assert(await waitUntil(async () => ((await classify(replicas[1], 'while-down')) === 200 ? true : undefined), 5000, 'while-down on the restarted replica'), '');
      return `restarted as pid ${cluster!.replicas[1].pid}`;
    },
    180_000,
  );

  await waitUntil(() => (traffic.total >= MIN_REQUESTS ? true : undefined), 240_000, `${MIN_REQUESTS} requests`, 200).catch(() => undefined);
  await traffic.stop();
  await suite.check(`through the LB during all of it: 0 failed requests out of >= ${MIN_REQUESTS}`, async () => {
    assert(traffic.total >= MIN_REQUESTS, `only ${traffic.total} requests were made`);
    const sample = [...new Set(traffic.failures)].slice(0, 5).join('; ');
    assert(traffic.failures.length === 0, `${traffic.failures.length} of ${traffic.total} failed: ${sample}`);
    return `${traffic.ok} requests, 0 failed`;
  });

  const expected = [...baseTasks, ...Array.from({ length: PROPAGATION_SAMPLES }, (_, i) => `prop-${i}`), 'while-down'].sort();
  await suite.check('0 tasks lost: every replica holds exactly the store\'s task set', async () => {
    for (const r of replicas) {
      const ids = await taskIds(r);
      assert(JSON.stringify(ids) === JSON.stringify(expected), `${r} holds ${ids.length} tasks, expected ${expected.length}: missing ${expected.filter((x) => !ids.includes(x)).join(', ')}`);
    }
    return `${expected.length} tasks on each of 3 replicas`;
  });

  await suite.check('the same id PUT on two replicas at once: exactly one 201, the other 409 (5 rounds)', async () => {
    for (let i = 0; i < 5; i++) {
      const statuses = (await Promise.all([putTask(replicas[0], `race-${i}`), putTask(replicas[2], `race-${i}`)])).sort();
      assert(statuses[0] === 201 && statuses[1] === 409, `round ${i}: ${statuses.join(', ')}`);
    }
    return '5 × [201, 409]';
  });

  await suite.check(
    'store stopped and started during writes: replicas serve and say so, changes 503, 0 acknowledged tasks lost',
    async () => {
      const acked: string[] = [];
      let stop = false;
      let n = 0;
      const writers = [0, 1].map(async (w) => {
        while (!stop) {
          const id = `w${w}-${n++}`;
          const status = await putTask(lb, id).catch(() => 0);
          if (status === 201) acked.push(id);
          else assert(status === 503 || status === 0, `PUT ${id}: ${status}`);
          if (status !== 201) await new Promise((r) => setTimeout(r, 100));
        }
      });
      await new Promise((r) => setTimeout(r, 1500));
      const beforeOutage = acked.length;
      const s1 = await sh('store', 'stop');
      assert(s1.code === 0, `store stop: ${s1.stderr}`);
      await waitUntil(async () => ((await metric(replicas[0], 'supsup_store_up')) === 0 ? true : undefined), 5000, 'supsup_store_up 0');
      const ready = await fetchJson(`${replicas[0]}/readyz`);
      assert(ready.status === 200 && /task store unreachable/.test(ready.body.reason ?? ''), `readyz during the outage: ${ready.status} ${JSON.stringify(ready.body)}`);
      assert((await putTask(replicas[1], 'during-outage')) === 503, 'a PUT during the outage was not 503');
      for (let i = 0; i < 6; i++) assert((await classify(lb, baseTasks[i % baseTasks.length])) === 200, 'classify through the LB failed during the outage');
      const log = readFileSync(join(cluster!.dir, 'replica-1.log'), 'utf8');
      assert(/task store lost/.test(log), 'replica 1 logged no "task store lost" line');
      await new Promise((r) => setTimeout(r, 1000));
      const s2 = await sh('store', 'start');
      assert(s2.code === 0, `store start: ${s2.stderr}`);
      await waitUntil(async () => ((await metric(replicas[2], 'supsup_store_up')) === 1 ? true : undefined), 10_000, 'supsup_store_up 1 again');
      const afterReturn = acked.length;
      await waitUntil(() => (acked.length >= afterReturn + 4 ? true : undefined), 20_000, 'writes acknowledged after the store returned');
      stop = true;
      await Promise.all(writers);
      // Every acknowledged id: in the store, and on every replica within a second or two.
      const store = new pg.Client({ connectionString: parseStoreUrl(cluster!.store).connectionString });
      await store.connect();
      const inStore = new Set((await store.query("SELECT id FROM supsup_tasks WHERE model = 'cluster'")).rows.map((r) => r.id as string));
      await store.end();
      const lost = acked.filter((id) => !inStore.has(id));
      assert(lost.length === 0, `${lost.length} acknowledged tasks are not in the store after its restart: ${lost.slice(0, 5).join(', ')}`);
      for (const r of replicas) {
        await waitUntil(async () => {
          const ids = new Set(await taskIds(r));
          return acked.every((id) => ids.has(id)) ? true : undefined;
        }, 10_000, `every acknowledged task on ${r}`);
      }
      return `${acked.length} acknowledged (${beforeOutage} before the stop, ${acked.length - afterReturn} after the start), all in the store and on 3 replicas`;
    },
    120_000,
  );

  await suite.check(
    'a corrupt mask blob in the store: refused and reported by every replica (also after a restart), never served',
    async () => {
      const mask = randomMask();
      const record = encodeRecord('corrupt-1', mask);
      record[record.length - 100] ^= 0x10; // one bit of the payload: its CRC-32 no longer matches
      const store = new pg.Client({ connectionString: parseStoreUrl(cluster!.store).connectionString });
      await store.connect();
      try {
        // Written behind the service's back, as disk or operator damage would be, but through the change log.
        await store.query('BEGIN');
        const g = Number((await store.query("UPDATE supsup_models SET generation = generation + 1 WHERE model = 'cluster' RETURNING generation")).rows[0].generation);
        const info = { id: 'corrupt-1', name: 'corrupt-1', addedAt: new Date().toISOString(), density: 0.5, transform: { kind: 'identity' } };
        await store.query("INSERT INTO supsup_tasks (model, id, generation, info, record) VALUES ('cluster', 'corrupt-1', $1, $2, $3)", [g, info, record]);
        await store.query("INSERT INTO supsup_changes (model, generation, op, id) VALUES ('cluster', $1, 'add', 'corrupt-1')", [g]);
        await store.query("SELECT pg_notify('supsup_changes', 'cluster')");
        await store.query('COMMIT');
      } finally {
        await store.end();
      }
      for (const r of replicas) {
        await waitUntil(async () => ((await metric(r, 'supsup_store_refused_tasks_total')) >= 1 ? true : undefined), 5000, `${r} counts the refused task`);
        assert((await classify(r, 'corrupt-1')) === 404, `${r} serves corrupt-1`);
        const ready = await fetchJson(`${r}/readyz`);
        assert(ready.status === 200 && /corrupt/.test(ready.body.reason ?? ''), `${r} readyz does not report it: ${JSON.stringify(ready.body)}`);
      }
      assert((await sh('replica', '3', 'kill')).code === 0, 'kill replica 3');
      const restarted = await sh('replica', '3', 'start');
      assert(restarted.code === 0, `restart replica 3: ${restarted.stderr}`);
      assert((await metric(replicas[2], 'supsup_store_refused_tasks_total')) >= 1, 'the restarted replica did not refuse it');
      assert((await classify(replicas[2], 'corrupt-1')) === 404, 'the restarted replica serves corrupt-1');
      const log = readFileSync(join(cluster!.dir, 'replica-3.log'), 'utf8');
      assert(/payload checksum mismatch/.test(log), 'replica 3 logged no checksum mismatch');
      const del = await fetch(`${lb}/tasks/corrupt-1`, { method: 'DELETE', headers: { authorization: auth().authorization } });
      assert(del.status === 204, `DELETE corrupt-1: ${del.status}`);
      await waitUntil(async () => ((await fetchJson(`${replicas[0]}/readyz`)).body.reason === undefined ? true : undefined), 5000, 'readyz clear after the DELETE');
      return 'refused on 3 replicas and after a restart; DELETE clears it';
    },
    120_000,
  );
}

let finishing = false;
async function finish(): Promise<void> {
  if (finishing) return;
  finishing = true;
  clearTimeout(watchdog);
  if (suite.failed && cluster) {
    for (const f of ['replica-1.log', 'replica-2.log', 'replica-3.log', 'haproxy.log']) {
      try {
        console.log(`--- ${f} (last lines) ---\n${readFileSync(join(cluster.dir, f), 'utf8').split('\n').slice(-15).join('\n')}`);
      } catch {
        /* not written */
      }
    }
  }
  const down = await sh('down').catch((e: Error) => ({ code: 1, stderr: e.message }));
  if (down.code !== 0) console.log(`# cluster.sh down failed: ${down.stderr}`);
  const code = suite.finish();
  process.exit(code);
}

main()
  .catch((e) => suite.fail('cluster run', e))
  .finally(finish);
