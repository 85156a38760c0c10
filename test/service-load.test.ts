import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { TINY, directEngine, float32Base64, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** Queueing behaviour under load: merging, the bounded queue, and per-request deadlines. */
const SIZE = TINY.inputSize;

function grpcClient(port: number): grpc.Client & Record<string, any> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
  return new pkg.supsup.v1.Classifier(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function infer(client: any, request: unknown): Promise<{ err: grpc.ServiceError | null; res: any }> {
  return new Promise((resolve) => client.Infer(request, (err: grpc.ServiceError | null, res: any) => resolve({ err, res })));
}

function histogramCount(metrics: string, name: string, le: string): number {
  const m = new RegExp(`^${name}_bucket\\{le="${le.replace('.', '\\.')}"\\} (\\d+)$`, 'm').exec(metrics);
  return m ? Number(m[1]) : NaN;
}

describe('batching and load shedding', () => {
  it('merges requests for the same task that arrive together into one pass, with the same answers', async () => {
    const tmp = await tempDir();
    const dir = await tinyModel(tmp.dir, 3);
    const service = await startTestService(testConfig(dir, { maxWaitMs: 150 }));
    const engine = await directEngine(dir);
    try {
      const xs = [0, 1, 2, 3, 4].map((i) => randomExamples(2, SIZE, 30 + i));
      const replies = await Promise.all(xs.map((x, i) => http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1', topK: i % 3 })));
      replies.forEach((r, i) => {
        assert.equal(r.status, 200);
        const expected = engine.classify(engine.validate({ inputs: xs[i].flat, batch: 2, task: 'random-1', topK: i % 3 }));
        assert.deepEqual(r.body.predictions.map((p: any) => p.label), expected.map((p) => p.label));
        assert.deepEqual(r.body.predictions.map((p: any) => p.topK?.length), expected.map((p) => p.topK?.length));
      });
      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      // One pass of 10 examples (bucket 16 minus bucket 8), beside the warm-up passes of 1 that never enter the queue.
      assert.equal(histogramCount(metrics, 'supsup_batch_size', '16') - histogramCount(metrics, 'supsup_batch_size', '8'), 1, metrics);
      assert.match(metrics, /^supsup_batch_size_count 1$/m);
    } finally {
      await service.close();
      engine.dispose();
      await tmp.remove();
    }
  });

  it('sheds load past the queue bound: 503 + Retry-After on REST, RESOURCE_EXHAUSTED on gRPC', async () => {
    const tmp = await tempDir();
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 4), { maxQueue: 2 }));
    const client = grpcClient(service.grpcPort);
    try {
      const x = randomExamples(16, SIZE, 40);
      const body = { inputsBase64: float32Base64(x.flat), shape: [16, SIZE], inference: { method: 'binary', decideFrom: 'each' } };
      const rest = await Promise.all(Array.from({ length: 12 }, () => http('POST', `${service.url}/classify`, body)));
      const shed = rest.filter((r) => r.status === 503);
      assert.ok(shed.length > 0, 'some requests were refused');
      assert.ok(rest.filter((r) => r.status === 200).length >= 3, 'the first requests were served');
      assert.deepEqual([...new Set(rest.map((r) => r.status))].sort(), [200, 503]);
      for (const r of shed) {
        assert.equal(r.headers.get('retry-after'), '1');
        assert.equal(r.body.error.code, 'resource_exhausted');
        assert.match(r.body.error.message, /2 requests are already waiting; retry later/);
      }
      const request = { inputs: Buffer.from(x.flat.buffer), shape: [16, SIZE], inference: { method: 'binary', decide_from: 'each' } };
      const calls = await Promise.all(Array.from({ length: 12 }, () => infer(client, request)));
      const refused = calls.filter((c) => c.err);
      assert.ok(refused.length > 0);
      for (const c of refused) {
        assert.equal(c.err!.code, grpc.status.RESOURCE_EXHAUSTED);
        assert.match(c.err!.details, /already waiting/);
      }
      // The Open Inference Protocol's REST routes answer the same way, in OIP's error format.
      const oip = { inputs: [{ name: 'x', datatype: 'FP32', shape: [16, SIZE], data: Array.from(x.flat) }], parameters: { method: 'binary', decide_from: 'each' } };
      const oipReplies = await Promise.all(Array.from({ length: 12 }, () => http('POST', `${service.url}/v2/models/supsup/infer`, oip)));
      const oipShed = oipReplies.filter((r) => r.status === 503);
      assert.ok(oipShed.length > 0, 'some OIP requests were refused');
      for (const r of oipShed) {
        assert.equal(r.headers.get('retry-after'), '1');
        assert.match(r.body.error, /already waiting; retry later/);
      }
      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      assert.match(metrics, /^supsup_requests_total\{protocol="http",route="\/classify",outcome="resource_exhausted"\} [1-9]/m);
      assert.match(metrics, /^supsup_requests_total\{protocol="grpc",route="\/supsup.v1.Classifier\/Infer",outcome="resource_exhausted"\} [1-9]/m);
      // Once the burst is over the server answers normally.
      assert.equal((await http('POST', `${service.url}/classify`, { inputs: [x.rows[0]], task: 'random-0' })).status, 200);
    } finally {
      client.close();
      await service.close();
      await tmp.remove();
    }
  });

  it('fails a request past its deadline: 504 on REST, DEADLINE_EXCEEDED on gRPC', async () => {
    const tmp = await tempDir();
    // The request waits up to 2 s for company, far past its 100 ms deadline.
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { timeoutMs: 100, maxWaitMs: 2000 }));
    const client = grpcClient(service.grpcPort);
    try {
      const x = randomExamples(1, SIZE, 50);
      const r = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-0' });
      assert.equal(r.status, 504);
      assert.equal(r.body.error.code, 'deadline_exceeded');
      assert.match(r.body.error.message, /did not finish within its deadline of 100 ms/);
      assert.ok(r.ms < 1000, `answered after ${r.ms} ms`);
      const c = await infer(client, { inputs: Buffer.from(x.flat.buffer), shape: [1, SIZE], task: 'random-0' });
      assert.equal(c.err?.code, grpc.status.DEADLINE_EXCEEDED);
      assert.match(c.err!.details, /deadline of 100 ms/);
      assert.match(await (await fetch(`${service.url}/metrics`)).text(), /^supsup_queue_depth 0$/m);
    } finally {
      client.close();
      await service.close();
      await tmp.remove();
    }
  });
});
