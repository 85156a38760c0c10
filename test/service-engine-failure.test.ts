import assert from 'node:assert/strict';
import { rename } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { LIVENESS_SERVICE, LOADER_OPTIONS, OIP_PROTO_PATH } from '../src/service/grpc/server.ts';
import { TINY, http, randomExamples, startTestService, tempDir, testConfig, tinyModel, type TestService } from './support/service-fixture.ts';

/**
 * The engine worker dies (worker.terminate(), the exit path a crash takes) under classification traffic, and with
 * its model directory gone so that restarts fail: no request waits on the dead worker, restarts back off, and
 * after --max-engine-restarts failures liveness fails on every surface so that an orchestrator replaces the process.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function killWorker(service: TestService): Promise<number> {
  return (service.ctx.runtime as any).client.worker.terminate();
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} within ${ms} ms`);
    await sleep(50);
  }
}

async function metric(service: TestService, name: string): Promise<number> {
  const text = (await http('GET', `${service.url}/metrics`)).body as string;
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `/metrics has ${name}`);
  return Number(m[1]);
}

function healthCheck(port: number, service: string): Promise<string> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, LOADER_OPTIONS)) as any;
  const client = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => client.Check({ service }, (err: Error | null, res: any) => (client.close(), err ? reject(err) : resolve(res.status))));
}

function oipServerLive(port: number): Promise<boolean> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any;
  const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => client.ServerLive({}, (err: Error | null, res: any) => (client.close(), err ? reject(err) : resolve(res.live))));
}

describe('engine worker failures', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
  });
  after(async () => tmp?.remove());

  it('under classify traffic: every request is answered at once (200 or 503 + Retry-After), the worker comes back, and the drain is clean', async () => {
    // A long deadline: a request stranded on the dead worker would show as a 504 after 20 s, or as the slow answer.
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 3, 'traffic'), { timeoutMs: 20_000, engineRestartDelayMs: 500 }));
    let open = true;
    let stopped = false;
    try {
      const x = randomExamples(4, TINY.inputSize, 80);
      const answers: { status: number; ms: number; retryAfter: string | null; at: number }[] = [];
      const clients = Array.from({ length: 6 }, async (_, i) => {
        while (!stopped) {
          const body = i % 2 ? { inputs: x.rows } : { inputs: x.rows, task: 'random-1' };
          const r = await http('POST', `${service.url}/classify`, body).catch(() => ({ status: 0, ms: NaN, headers: new Headers() }));
          answers.push({ status: r.status, ms: r.ms, retryAfter: r.headers.get('retry-after'), at: performance.now() });
        }
      });
      await until('traffic flowing', async () => answers.filter((a) => a.status === 200).length >= 6);
      const crashed = performance.now();
      await killWorker(service);
      const ready = await http('GET', `${service.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.body.reason, /restarting/);
      assert.equal((await http('GET', `${service.url}/healthz`)).status, 200, 'live while restarting');
      await until('ready again', async () => (await http('GET', `${service.url}/readyz`)).status === 200);
      // Traffic after the restart is served again.
      const servedBefore = answers.filter((a) => a.status === 200 && a.at > crashed).length;
      await until('served after the restart', async () => answers.filter((a) => a.status === 200 && a.at > crashed).length > servedBefore + 6);
      stopped = true;
      await Promise.all(clients);

      const refused = answers.filter((a) => a.status === 503);
      assert.ok(refused.length > 0, 'some requests met the dead worker or the restart window');
      for (const a of refused) assert.equal(a.retryAfter, '1');
      assert.deepEqual([...new Set(answers.map((a) => a.status))].sort(), [200, 503], 'only 200 or 503: nothing stranded until its deadline (504)');
      const slowest = Math.max(...answers.map((a) => a.ms));
      assert.ok(slowest < 10_000, `no request waited on the dead worker (slowest ${Math.round(slowest)} ms)`);
      assert.equal(await metric(service, 'supsup_engine_restarts_total'), 1);
      assert.equal(await metric(service, 'supsup_ready'), 1);
      // SIGTERM after the crash drains cleanly (the serve command exits 0 on a clean stop).
      open = false;
      assert.equal(await service.stop(5_000), true, 'clean drain after the crash');
    } finally {
      stopped = true;
      if (open) await service.close();
    }
  });

  it('with the model directory gone: retries with doubling delays, then liveness fails on /healthz, OIP and gRPC health', async () => {
    const dir = await tinyModel(tmp.dir, 2, 'gone');
    const service = await startTestService(testConfig(dir, { maxEngineRestarts: 3, engineRestartDelayMs: 200 }));
    try {
      assert.equal(await healthCheck(service.grpcPort, LIVENESS_SERVICE), 'SERVING');
      assert.equal(await metric(service, 'supsup_ready'), 1);
      await rename(dir, `${dir}.away`); // unreadable for any user, root included
      const crashed = performance.now();
      await killWorker(service);
      const during = await http('POST', `${service.url}/classify`, { inputs: randomExamples(1, TINY.inputSize, 81).rows, task: 'random-0' });
      assert.equal(during.status, 503);
      assert.equal(during.headers.get('retry-after'), '1');
      await until('liveness fails', async () => (await http('GET', `${service.url}/healthz`)).status === 503);
      const gaveUpAfter = performance.now() - crashed;
      // Three attempts 200, 400 and 800 ms apart: at least 1.4 s; without the doubling it would be 0.6 s.
      assert.ok(gaveUpAfter >= 1400, `gave up after ${Math.round(gaveUpAfter)} ms`);
      const healthz = await http('GET', `${service.url}/healthz`);
      assert.equal(healthz.body.status, 'failed');
      assert.match(healthz.body.reason, /could not be restarted/);
      assert.equal((await http('GET', `${service.url}/readyz`)).status, 503);
      assert.equal((await http('GET', `${service.url}/v2/health/live`)).status, 503);
      assert.equal(await healthCheck(service.grpcPort, LIVENESS_SERVICE), 'NOT_SERVING');
      assert.equal(await healthCheck(service.grpcPort, ''), 'NOT_SERVING');
      assert.equal(await oipServerLive(service.grpcPort), false);
      assert.equal(await metric(service, 'supsup_engine_restarts_total'), 3);
      assert.equal(await metric(service, 'supsup_ready'), 0);
      const refused = await http('POST', `${service.url}/classify`, { inputs: randomExamples(1, TINY.inputSize, 82).rows, task: 'random-0' });
      assert.equal(refused.status, 503);
      assert.match(refused.body.error.message, /could not be restarted/);
      // Given up for good: the model coming back does not revive it (the orchestrator's replacement will load it).
      await rename(`${dir}.away`, dir);
      await sleep(300);
      assert.equal((await http('GET', `${service.url}/healthz`)).status, 503);
    } finally {
      assert.equal(await service.stop(5_000), true, 'a server that gave up still stops cleanly');
    }
  });

  it('recovers when the model directory comes back before it gives up', async () => {
    const dir = await tinyModel(tmp.dir, 2, 'back');
    const service = await startTestService(testConfig(dir, { maxEngineRestarts: 6, engineRestartDelayMs: 150 }));
    try {
      await rename(dir, `${dir}.away`);
      await killWorker(service);
      await until('two failed restarts', async () => (await metric(service, 'supsup_engine_restarts_total')) >= 2);
      assert.equal((await http('GET', `${service.url}/healthz`)).status, 200, 'still live while retrying');
      await rename(`${dir}.away`, dir);
      await until('ready again', async () => (await http('GET', `${service.url}/readyz`)).status === 200);
      const r = await http('POST', `${service.url}/classify`, { inputs: randomExamples(2, TINY.inputSize, 83).rows, task: 'random-1' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(await healthCheck(service.grpcPort, LIVENESS_SERVICE), 'SERVING');
    } finally {
      await service.close();
    }
  });
});
