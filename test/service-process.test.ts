import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { randomBankMask, writeRandomBankModel } from '../bench/random-bank-model.ts';
import { maskWords, presetArchitecture } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { LOADER_OPTIONS } from '../src/service/grpc/server.ts';
import { ADMIN_TOKEN, TINY, float32Base64, http, maskBase64, randomExamples, serveRefusal, spawnServe, tempDir, tinyModel } from './support/service-fixture.ts';

/** `supsup serve` as a real process: startup refusals, SIGTERM drain, and health and metrics answered under load. */
const EXAMPLE_MODEL = new URL('../models/example-lenet', import.meta.url).pathname;

function healthClient(port: number): grpc.Client & Record<string, any> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, LOADER_OPTIONS)) as any;
  return new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PORTS = ['--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', '--backend', 'wasm'];

describe('supsup serve process', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let model: string;
  before(async () => {
    tmp = await tempDir();
    model = await tinyModel(tmp.dir, 3);
  });
  after(async () => tmp?.remove());

  it('a PUT that grows the bank leaves one copy of it resident: the old buffer is freed', { skip: existsSync('/proc/self/status') ? false : 'reads /proc' }, async () => {
    // LeNet 300-100 s = 500, 39.4 KB a mask: 1600 tasks fill their 8-slot blocks, so the first PUT moves the bank
    // (63 MB) into a larger buffer. The old one is shared by both threads, and stayed resident (stop 22) until
    // the runtime stopped pinning open's reply and each thread collected right after the grow.
    const architecture = presetArchitecture('lenet-300-100', 500);
    const dir = path.join(tmp.dir, 'grows');
    const rng = new Xoshiro128(5);
    await writeRandomBankModel(dir, architecture, 1600, rng);
    const server = await spawnServe([...PORTS, '--model', dir], { SUPSUP_ADMIN_TOKEN: ADMIN_TOKEN });
    try {
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))![1]) * 1024;
      const bank = 1600 * maskWords(architecture) * 4;
      const before = rss();
      const put = await http('PUT', `${server.url}/tasks/grown`, { name: 'grown', mask: maskBase64(randomBankMask(architecture, rng)) }, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      let after = rss();
      for (let i = 0; i < 50 && after > before + bank / 2; i++) {
        await sleep(100);
        after = rss();
      }
      assert.ok(after <= before + bank / 2, `RSS grew by ${((after - before) / 2 ** 20).toFixed(1)} MiB over a ${(bank / 2 ** 20).toFixed(1)} MiB bank`);
      const given = await http('POST', `${server.url}/classify`, { inputs: [Array(784).fill(0)], task: 'grown' });
      assert.equal(given.status, 200, JSON.stringify(given.body));
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });

  it('refuses to start on bad settings with a message naming the setting', async () => {
    // Every setting's checks are unit-tested (service-config.test.ts); here, that the process reports them.
    // Exit code 2 for a bad setting (a usage error), 1 for a failure while starting.
    const cases: [string[], Record<string, string>, RegExp, number][] = [
      [['--http-port', '70000'], {}, /--http-port: must be a port number from 0 to 65535, got "70000"/, 2],
      [[], { SUPSUP_MAX_QUEUE: 'lots' }, /SUPSUP_MAX_QUEUE: must be a whole number, got "lots"/, 2],
      [['--model', '/nonexistent/model'], {}, /\/nonexistent\/model\/manifest.json: missing/, 1],
    ];
    for (const [args, env, message, exitCode] of cases) {
      const { code, stderr } = await serveRefusal([...PORTS, '--model', model, ...args], env);
      assert.equal(code, exitCode, stderr);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('on SIGTERM: readiness false and gRPC NOT_SERVING at once, the request in flight completes, exit 0 within the timeout', async () => {
    // The request waits (max-wait-ms) for company, so it is in flight when SIGTERM arrives.
    const server = await spawnServe([...PORTS, '--model', model, '--max-wait-ms', '1500', '--drain-delay-ms', '1000', '--shutdown-timeout-ms', '4000', '--log-level', 'info']);
    const health = healthClient(server.grpcPort);
    try {
      assert.equal((await http('GET', `${server.url}/readyz`)).status, 200);
      // Connect the gRPC health client now: a first connection made after SIGTERM can land after the drain
      // delay, when the listener is already closed (seen on loaded machines).
      const check = () =>
        new Promise<string>((resolve, reject) =>
          health.Check({ service: 'supsup.v1.Classifier' }, (err: Error | null, res: any) => (err ? reject(err) : resolve(res.status))),
        );
      assert.equal(await check(), 'SERVING');
      const x = randomExamples(1, TINY.inputSize, 60);
      const inflight = http('POST', `${server.url}/classify`, { inputs: x.rows, task: 'random-0' });
      await sleep(200);
      const sent = performance.now();
      server.child.kill('SIGTERM');
      await sleep(100);
      const ready = await http('GET', `${server.url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(ready.body.reason, /draining/);
      assert.equal((await http('GET', `${server.url}/healthz`)).status, 200, 'still live while draining');
      assert.equal(await check(), 'NOT_SERVING');
      const done = await inflight;
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.predictions.length, 1);
      const { code, at } = await server.exited;
      assert.equal(code, 0);
      assert.ok(at - sent < 4000, `exited ${Math.round(at - sent)} ms after SIGTERM`);
      assert.ok(server.logs.some((l) => /^draining/.test(l.msg)));
      assert.ok(server.logs.some((l) => l.msg === 'stopped' && l.clean === true));
    } finally {
      health.close();
      server.child.kill('SIGKILL');
    }
  });

  it('on SIGTERM with a request that cannot finish: cuts it at the shutdown timeout and exits 1', async () => {
    // A client that sends headers and half a body, then stalls: the request stays in flight forever.
    const server = await spawnServe([...PORTS, '--model', model, '--shutdown-timeout-ms', '1500', '--log-level', 'info']);
    const socket = connect(server.httpPort, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
      socket.on('error', () => undefined);
      socket.write('POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"inputs": [[');
      await sleep(300);
      const sent = performance.now();
      server.child.kill('SIGTERM');
      const { code, at } = await server.exited;
      assert.equal(code, 1, 'exit code 1 when the drain had to cut');
      assert.ok(at - sent >= 1000, `waited for the request before cutting (exited after ${Math.round(at - sent)} ms)`);
      // Bounded, not exact: the cut comes at the timeout, plus what a loaded machine adds to the exit.
      assert.ok(at - sent < 1500 + 3000, `exited ${Math.round(at - sent)} ms after SIGTERM, timeout 1500 ms`);
      assert.ok((await closed) - sent < 1500 + 3000, 'the stalled connection was closed by the server');
      assert.ok(server.logs.some((l) => /^shutdown timeout reached/.test(l.msg)), JSON.stringify(server.logs.map((l) => l.msg)));
      assert.ok(server.logs.some((l) => l.msg === 'stopped' && l.clean === false));
    } finally {
      socket.destroy();
      server.child.kill('SIGKILL');
    }
  });

  it('answers /healthz and /metrics while inference runs flat out', async () => {
    // Behaviour only: how fast they answer under load is measured by bench/overload.ts (a target, not a test).
    const modelDir = existsSync(EXAMPLE_MODEL) ? EXAMPLE_MODEL : model;
    const server = await spawnServe(['--model', modelDir, ...PORTS, '--log-level', 'info']);
    try {
      const x = randomExamples(128, TINY.inputSize, 61);
      const body = JSON.stringify({ inputsBase64: float32Base64(x.flat), shape: [128, TINY.inputSize], inference: { method: 'binary', decideFrom: 'batch' } });
      let stop = false;
      let served = 0;
      const flood = Array.from({ length: 4 }, async () => {
        while (!stop) {
          const r = await http('POST', `${server.url}/classify`, body);
          assert.equal(r.status, 200, JSON.stringify(r.body));
          served++;
        }
      });
      while (served === 0) await sleep(20);
      for (let i = 0; i < 10; i++) {
        const health = await http('GET', `${server.url}/healthz`);
        assert.equal(health.status, 200);
        assert.deepEqual(health.body, { status: 'ok' });
        const metrics = await http('GET', `${server.url}/metrics`);
        assert.equal(metrics.status, 200);
        assert.match(metrics.body, /^supsup_ready 1$/m);
        assert.match(metrics.body, /^supsup_inference_duration_seconds_count\{mode="inferred"\} [1-9]/m);
      }
      stop = true;
      await Promise.all(flood);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
