import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { Engine } from '../src/core/engine.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, rejectsWith, unary } from './support/grpc-calls.ts';
import { TINY, type TestService, directEngine, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

const SIZE = TINY.inputSize;
const REFLECTION_PROTO = createRequire(import.meta.url).resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');

type Client = DynamicClient;
interface Clients {
  classifier: Client;
  health: Client;
  reflection: Client;
}

function clients(port: number): Clients {
  const def = protoLoader.loadSync([PROTO_PATH, healthProtoPath, REFLECTION_PROTO], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as any;
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  return {
    classifier: new pkg.supsup.v1.Classifier(address, creds),
    health: new pkg.grpc.health.v1.Health(address, creds),
    reflection: new pkg.grpc.reflection.v1.ServerReflection(address, creds),
  };
}

function packed(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

describe('gRPC service', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let engine: Engine;
  let c: Clients;

  before(async () => {
    tmp = await tempDir();
    const dir = await tinyModel(tmp.dir, 4);
    service = await startTestService(testConfig(dir, { maxBatch: 32, bodyLimit: 256 * 1024 }));
    engine = await directEngine(dir, 32);
    c = clients(service.grpcPort);
  });
  after(async () => {
    for (const client of Object.values(c ?? {})) client.close();
    await service?.close();
    engine?.dispose();
    await tmp?.remove();
  });

  it('Infer with a given task and with the task inferred agrees with the engine', async () => {
    const x = randomExamples(3, SIZE, 21);
    const cases: [Record<string, unknown>, Parameters<Engine['validate']>[0]][] = [
      [{ task: 'random-1', top_k: 2 }, { inputs: x.flat, batch: 3, task: 'random-1', topK: 2 }],
      [{}, { inputs: x.flat, batch: 3 }],
      [{ inference: { method: 'binary', decide_from: 'each' } }, { inputs: x.flat, batch: 3, inference: { method: 'binary', decideFrom: 'each' } }],
    ];
    for (const [extra, direct] of cases) {
      const expected = engine.classify(engine.validate(direct));
      for (const input of [{ inputs: packed(x.flat), shape: [3, SIZE] }, { inputs: Buffer.from(x.bytes), shape: [3, SIZE], dtype: 'uint8' }]) {
        const res = await unary(c.classifier, 'Infer', { ...input, ...extra });
        assert.equal(res.predictions.length, 3);
        res.predictions.forEach((p: any, i: number) => {
          const e = expected[i];
          assert.equal(p.label ?? 0, e.label);
          assert.equal(p.task.id, e.task.id);
          assert.equal(p.task.inferred ?? false, e.task.inferred);
          assert.equal(p.task.unknown ?? false, e.task.unknown);
          assert.ok(Math.abs(p.task.confidence - e.task.confidence) < 1e-6);
          p.probabilities.forEach((v: number, k: number) => assert.ok(Math.abs(v - e.probabilities[k]) < 1e-6));
          assert.deepEqual((p.top_k ?? []).map((t: any) => t.label ?? 0), (e.topK ?? []).map((t) => t.label));
        });
      }
    }
  });

  it('refuses bad requests with the matching status and the same messages as REST', async () => {
    const one = new Float32Array(SIZE).fill(0.2);
    const nan = one.slice();
    nan[5] = NaN;
    const cases: [Record<string, unknown>, grpc.status, RegExp][] = [
      [{ inputs: packed(one), shape: [1, SIZE - 1] }, grpc.status.INVALID_ARGUMENT, /holds 3136 bytes, but shape \[1, 783\]/],
      [{ inputs: packed(one.subarray(1)), shape: [1, SIZE - 1] }, grpc.status.INVALID_ARGUMENT, /each example must have 784 values/],
      [{ inputs: packed(one), shape: [SIZE] }, grpc.status.INVALID_ARGUMENT, /shape must be \[examples, values per example\]/],
      [{ inputs: packed(nan), shape: [1, SIZE] }, grpc.status.INVALID_ARGUMENT, /inputs\[0\]\[5\] is not a finite number/],
      [{ shape: [0, SIZE] }, grpc.status.INVALID_ARGUMENT, /at least one example/],
      [{ inputs: packed(new Float32Array(33 * SIZE)), shape: [33, SIZE] }, grpc.status.INVALID_ARGUMENT, /over the limit of 32/],
      [{ inputs: packed(one), shape: [1, SIZE], dtype: 'int8' }, grpc.status.INVALID_ARGUMENT, /dtype must be one of/],
      [{ inputs: packed(one), shape: [1, SIZE], inference: { method: 'magic' } }, grpc.status.INVALID_ARGUMENT, /inference.method must be one of/],
      [{ inputs: packed(one), shape: [1, SIZE], top_k: 11 }, grpc.status.INVALID_ARGUMENT, /topK must be an integer from 0 to 10/],
      [{ inputs: packed(one), shape: [1, SIZE], task: 'missing' }, grpc.status.NOT_FOUND, /task "missing" does not exist/],
      [{ inputs: packed(new Float32Array(100 * SIZE)), shape: [100, SIZE] }, grpc.status.RESOURCE_EXHAUSTED, /larger than max/],
    ];
    for (const [request, code, message] of cases) await rejectsWith(unary(c.classifier, 'Infer', request), code, message);
    // Still healthy afterwards.
    assert.equal((await unary(c.classifier, 'Infer', { inputs: packed(one), shape: [1, SIZE], task: 'random-0' })).predictions.length, 1);
  });

  it('honours the client deadline', async () => {
    const x = randomExamples(32, SIZE, 22);
    const request = { inputs: packed(x.flat), shape: [32, SIZE], inference: { method: 'binary', decide_from: 'each' } };
    await rejectsWith(unary(c.classifier, 'Infer', request, 1), grpc.status.DEADLINE_EXCEEDED, /deadline/i);
  });

  it("tags each call with a request id (the client's when sane, else a UUID), echoed in metadata and on its log line", async () => {
    const logged: { reqId: string; rpc: string; code: string }[] = [];
    const log = service.ctx.log;
    const info = log.info;
    log.info = ((obj: any, msg?: string) => void (msg === 'gRPC call completed' && logged.push(obj))) as typeof log.info;
    const echoed = (id?: string) =>
      new Promise<string>((resolve, reject) => {
        const md = new grpc.Metadata();
        if (id !== undefined) md.set('x-request-id', id);
        const call = c.classifier.ListTasks({}, md, { deadline: Date.now() + 10_000 }, (err: Error | null) => err && reject(err));
        call.on('metadata', (m: grpc.Metadata) => resolve(String(m.get('x-request-id')[0])));
      });
    try {
      assert.equal(await echoed('trace-42.a:b'), 'trace-42.a:b');
      const fresh = await echoed('not sane; has spaces');
      assert.match(fresh, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.notEqual(await echoed(), fresh, 'a new id per call');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(logged.slice(0, 2).map((l) => [l.reqId, l.rpc, l.code]), [
        ['trace-42.a:b', '/supsup.v1.Classifier/ListTasks', 'ok'],
        [fresh, '/supsup.v1.Classifier/ListTasks', 'ok'],
      ]);
    } finally {
      log.info = info;
    }
  });

  it('lists the tasks', async () => {
    const res = await unary(c.classifier, 'ListTasks', {});
    assert.deepEqual(res.tasks.map((t: any) => t.id), ['random-0', 'random-1', 'random-2', 'random-3']);
    assert.deepEqual(JSON.parse(res.tasks[0].transform_json), { kind: 'identity' });
    assert.match(res.tasks[0].added_at, /^\d{4}-/);
    assert.ok(res.tasks[0].density > 0.4 && res.tasks[0].density < 0.6);
  });

  it('answers grpc.health.v1 Check for the server and for the Classifier', async () => {
    for (const name of ['', 'supsup.v1.Classifier']) assert.equal((await unary(c.health, 'Check', { service: name })).status, 'SERVING');
    await rejectsWith(unary(c.health, 'Check', { service: 'nope' }), grpc.status.NOT_FOUND, /./);
  });

  it('offers server reflection', async () => {
    const services = await new Promise<string[]>((resolve, reject) => {
      const stream = c.reflection.ServerReflectionInfo();
      stream.on('data', (res: any) => {
        resolve(res.list_services_response.service.map((s: any) => s.name));
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    assert.ok(services.includes('supsup.v1.Classifier'), services.join(', '));
    assert.ok(services.includes('grpc.health.v1.Health'), services.join(', '));
  });
});

describe('gRPC drain', () => {
  it('turns health NOT_SERVING when draining, lets the call in flight finish, and then stops', async () => {
    const tmp = await tempDir();
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 3), { maxWaitMs: 400 }));
    const c = clients(service.grpcPort);
    try {
      const statuses: string[] = [];
      const watch = c.health.Watch({ service: '' });
      watch.on('data', (r: any) => statuses.push(r.status));
      watch.on('error', () => undefined);
      const x = randomExamples(1, SIZE, 23);
      // maxWaitMs keeps this given-task call queued (waiting for company) while the drain starts.
      const inflight = unary(c.classifier, 'Infer', { inputs: packed(x.flat), shape: [1, SIZE], task: 'random-0' });
      await new Promise((r) => setTimeout(r, 100));
      const stopped = service.stop(5_000);
      const res = await inflight;
      assert.equal(res.predictions.length, 1);
      assert.equal(await stopped, true);
      assert.deepEqual(statuses, ['SERVING', 'NOT_SERVING']);
    } finally {
      for (const client of Object.values(c)) client.close();
      await tmp.remove();
    }
  });
});
