// The model's one-example unknown rule (manifest unknownTask.oneExample) reaches every answer: REST /classify,
// gRPC Infer and the OIP task_unknown output, for decisions made from one example, and only for those.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { setUnknownTaskThreshold } from '../src/model/model-store.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, unary } from './support/grpc-calls.ts';
import { TINY, type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

describe('serving the one-example unknown rule', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let flagsAll: TestService;
  let flagsNone: TestService;
  let client: DynamicClient;
  before(async () => {
    tmp = await tempDir();
    // ε = 0: the batch test flags nothing; the rule's threshold then decides alone what is flagged from one example.
    const withRule = async (name: string, threshold: number) => {
      const dir = await tinyModel(tmp.dir, 4, name);
      const oneExample = { score: 'real-vs-superfluous' as const, candidates: 4, threshold, calibration: 'test' };
      await setUnknownTaskThreshold(dir, { epsilon: 0, calibration: 'test', oneExample });
      return startTestService(testConfig(dir, { epsilon: undefined }));
    };
    flagsAll = await withRule('all', 1e9);
    flagsNone = await withRule('none', -1e9);
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    client = new pkg.supsup.v1.Classifier(`127.0.0.1:${flagsAll.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    for (const s of [flagsAll, flagsNone]) await s?.close();
    await tmp?.remove();
  });

  const unknownOf = (body: any) => body.predictions.map((p: { task: { unknown: boolean } }) => p.task.unknown);

  it('REST /classify: one example, or each example alone, by the rule; a whole batch by k · max ν < 1 + ε', async () => {
    const { rows } = randomExamples(3, TINY.inputSize, 31);
    const ask = (s: TestService, body: Record<string, unknown>) => http('POST', `${s.url}/classify`, body);
    const one = await ask(flagsAll, { inputs: rows.slice(0, 1) });
    assert.equal(one.status, 200, JSON.stringify(one.body));
    assert.deepEqual(unknownOf(one.body), [true]);
    assert.deepEqual(unknownOf((await ask(flagsNone, { inputs: rows.slice(0, 1) })).body), [false]);
    assert.deepEqual(unknownOf((await ask(flagsAll, { inputs: rows, inference: { decideFrom: 'each' } })).body), [true, true, true]);
    assert.deepEqual(unknownOf((await ask(flagsAll, { inputs: rows, inference: { decideFrom: 'first' } })).body), [true, true, true]);
    assert.deepEqual(unknownOf((await ask(flagsAll, { inputs: rows })).body), [false, false, false]);
  });

  it('gRPC Infer answers the same', async () => {
    const { flat } = randomExamples(3, TINY.inputSize, 32);
    const packed = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    const one = await unary(client, 'Infer', { inputs: packed(flat.subarray(0, TINY.inputSize)), shape: [1, TINY.inputSize] });
    assert.deepEqual(one.predictions.map((p: any) => p.task.unknown ?? false), [true]);
    const batch = await unary(client, 'Infer', { inputs: packed(flat), shape: [3, TINY.inputSize] });
    assert.deepEqual(batch.predictions.map((p: any) => p.task.unknown ?? false), [false, false, false]);
  });

  it('OIP infer: the task_unknown output follows the rule', async () => {
    const { rows } = randomExamples(1, TINY.inputSize, 33);
    const infer = (s: TestService) =>
      http('POST', `${s.url}/v2/models/supsup/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, TINY.inputSize], data: rows[0] }] });
    const [a, b] = await Promise.all([infer(flagsAll), infer(flagsNone)]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const flag = (body: any) => body.outputs.find((o: { name: string }) => o.name === 'task_unknown').data;
    assert.deepEqual(flag(a.body), [true]);
    assert.deepEqual(flag(b.body), [false]);
  });
});
