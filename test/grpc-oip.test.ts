import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Engine } from '../src/core/engine.ts';
import type { Prediction } from '../src/contract/classify.ts';
import { LOADER_OPTIONS, OIP_PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, rejectsWith, unary } from './support/grpc-calls.ts';
import { TINY, type TestService, directEngine, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** inference.GRPCInferenceService (Open Inference Protocol over gRPC) against the engine and against OIP REST. */
const SIZE = TINY.inputSize;
type Client = DynamicClient;

const str = (s: string) => ({ string_param: s });
const raw32 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** Reads the five raw outputs back, by the protocol's binary rules, into predictions-like rows. */
function decodeOutputs(res: any) {
  const byName = Object.fromEntries(res.outputs.map((o: any, i: number) => [o.name, { ...o, raw: res.raw_output_contents[i] as Buffer }]));
  const n = Number(byName.label.shape[0]);
  const f32 = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i));
  const texts: string[] = [];
  for (let at = 0, b = byName.task.raw; at < b.length; ) {
    const len = b.readUInt32LE(at);
    texts.push(b.subarray(at + 4, at + 4 + len).toString('utf8'));
    at += 4 + len;
  }
  const probabilities = f32(byName.probabilities.raw);
  const classes = Number(byName.probabilities.shape[1]);
  return Array.from({ length: n }, (_, i) => ({
    probabilities: probabilities.slice(i * classes, (i + 1) * classes),
    label: Number(byName.label.raw.readBigInt64LE(8 * i)),
    task: texts[i],
    confidence: f32(byName.task_confidence.raw)[i],
    unknown: byName.task_unknown.raw[i] === 1,
  }));
}

function assertSame(got: ReturnType<typeof decodeOutputs>, expected: Prediction[]) {
  assert.equal(got.length, expected.length);
  got.forEach((g, i) => {
    const e = expected[i];
    assert.equal(g.label, e.label);
    assert.equal(g.task, e.task.id);
    assert.equal(g.unknown, e.task.unknown);
    assert.ok(Math.abs(g.confidence - e.task.confidence) < 1e-6);
    g.probabilities.forEach((v, k) => assert.ok(Math.abs(v - e.probabilities[k]) < 1e-6));
  });
}

describe('Open Inference Protocol over gRPC', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let engine: Engine;
  let client: Client;

  before(async () => {
    tmp = await tempDir();
    const dir = await tinyModel(tmp.dir, 4);
    service = await startTestService(testConfig(dir, { maxBatch: 32 }));
    engine = await directEngine(dir, 32);
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any;
    client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await service?.close();
    engine?.dispose();
    await tmp?.remove();
  });

  it('answers health and metadata like the OIP REST routes', async () => {
    assert.equal((await unary(client, 'ServerLive', {})).live, true);
    assert.equal((await unary(client, 'ServerReady', {})).ready, true);
    assert.equal((await unary(client, 'ModelReady', { name: 'supsup' })).ready, true);
    const server = await unary(client, 'ServerMetadata', {});
    assert.equal(server.name, 'supsup');
    const meta = await unary(client, 'ModelMetadata', { name: 'supsup' });
    const rest = (await http('GET', `${service.url}/v2/models/supsup`)).body;
    assert.deepEqual(
      meta.inputs.map((t: any) => [t.name, t.datatype, t.shape.map(Number)]),
      rest.inputs.map((t: any) => [t.name, t.datatype, t.shape]),
    );
    assert.deepEqual(meta.outputs.map((t: any) => t.name), ['probabilities', 'label', 'task', 'task_confidence', 'task_unknown']);
    await rejectsWith(unary(client, 'ModelReady', { name: 'resnet' }), grpc.status.NOT_FOUND, /unknown model "resnet" \(this server serves "supsup"/);
    assert.deepEqual(server.extensions, ['binary_tensor_data', 'model_configuration', 'statistics', 'model_repository']);
    assert.deepEqual(meta.versions, ['1']);
    assert.equal(meta.properties.input_datatypes, 'FP32,FP64,UINT8');
    assert.match(meta.properties.input_scaling, /divided by 255/);
    assert.equal((await unary(client, 'ModelReady', { name: 'supsup', version: '1' })).ready, true);
    await rejectsWith(unary(client, 'ModelReady', { name: 'supsup', version: '2' }), grpc.status.NOT_FOUND, /unknown version "2" of model "supsup"/);
    await rejectsWith(unary(client, 'ModelMetadata', { name: 'supsup', version: '7' }), grpc.status.NOT_FOUND, /unknown version "7"/);
    const task = await unary(client, 'ModelMetadata', { name: 'random-1' });
    assert.equal(task.name, 'random-1');
    assert.equal(task.properties.task, 'random-1');
  });

  it('ModelInfer agrees with the engine: raw FP32 or UINT8 contents, task given or inferred, id echoed', async () => {
    const x = randomExamples(3, SIZE, 31);
    const given = engine.classify(engine.validate({ inputs: x.flat, batch: 3, task: 'random-2' }));
    const inferred = engine.classify(engine.validate({ inputs: x.flat, batch: 3, inference: { decideFrom: 'each' } }));
    const base = { model_name: 'supsup', id: 'req-7' };
    const fp32 = { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, SIZE] }], raw_input_contents: [raw32(x.flat)] };
    const uint8 = { inputs: [{ name: 'x', datatype: 'UINT8', shape: [3, SIZE], contents: { uint_contents: Array.from(x.bytes) } }] };
    for (const input of [fp32, uint8]) {
      const a = await unary(client, 'ModelInfer', { ...base, ...input, parameters: { task: str('random-2') } });
      assert.equal(a.id, 'req-7');
      assert.equal(a.model_name, 'supsup');
      assert.equal(a.parameters.task_inferred.bool_param ?? false, false);
      assertSame(decodeOutputs(a), given);
      const b = await unary(client, 'ModelInfer', { ...base, ...input, parameters: { decide_from: str('each') } });
      assert.equal(b.parameters.task_inferred.bool_param, true);
      assertSame(decodeOutputs(b), inferred);
    }
  });

  it('refuses bad requests with the matching status and messages', async () => {
    const one = new Float32Array(SIZE).fill(0.2);
    const ok = { model_name: 'supsup', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, SIZE] }], raw_input_contents: [raw32(one)] };
    const cases: [Record<string, unknown>, grpc.status, RegExp][] = [
      [{ ...ok, model_name: 'other' }, grpc.status.NOT_FOUND, /unknown model "other"/],
      [{ ...ok, model_version: '3' }, grpc.status.NOT_FOUND, /unknown version "3" of model "supsup"/],
      [{ ...ok, inputs: [], raw_input_contents: [] }, grpc.status.INVALID_ARGUMENT, /inputs must hold exactly one tensor/],
      [{ ...ok, inputs: [] }, grpc.status.INVALID_ARGUMENT, /raw_input_contents holds 1 entries for 0 inputs/],
      [{ ...ok, inputs: [{ name: 'x', datatype: 'INT8', shape: [1, SIZE] }] }, grpc.status.INVALID_ARGUMENT, /datatype must be one of FP32, FP64, UINT8/],
      [{ ...ok, inputs: [{ name: 'input0', datatype: 'FP32', shape: [1, SIZE] }] }, grpc.status.INVALID_ARGUMENT, /inputs\[0\].name must be "x"/],
      [{ ...ok, inputs: [{ name: 'x', datatype: 'FP32', shape: [SIZE] }] }, grpc.status.INVALID_ARGUMENT, /shape must be \[examples, \.\.\.\]/],
      [{ ...ok, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 28, 29] }] }, grpc.status.INVALID_ARGUMENT, /each example must have 784 values; shape \[1, 28, 29\] gives 812/],
      [{ ...ok, raw_input_contents: [raw32(one).subarray(1)] }, grpc.status.INVALID_ARGUMENT, /holds 3135 bytes, but shape \[1, 784\] of FP32 needs 3136/],
      [{ ...ok, raw_input_contents: [Buffer.alloc(3 * 1024 * 1024)], inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, SIZE] }] }, grpc.status.INVALID_ARGUMENT, /holds 3145728 bytes, but shape \[1, 784\] of UINT8 needs 784/],
      [{ ...ok, raw_input_contents: [], inputs: [{ name: 'x', datatype: 'FP32', shape: [1, SIZE] }] }, grpc.status.INVALID_ARGUMENT, /carries no data/],
      [{ ...ok, raw_input_contents: [], inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, SIZE], contents: { uint_contents: [300, ...new Array(SIZE - 1).fill(0)] } }] }, grpc.status.INVALID_ARGUMENT, /value 0 is 300: UINT8 values are whole numbers 0..255/],
      [{ ...ok, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, SIZE], contents: { fp32_contents: [1] } }] }, grpc.status.INVALID_ARGUMENT, /raw_input_contents or in contents, not both/],
      [{ ...ok, outputs: [{ name: 'logits' }] }, grpc.status.INVALID_ARGUMENT, /unknown output "logits"/],
      [{ ...ok, parameters: { timeout: { int64_param: -5 } } }, grpc.status.INVALID_ARGUMENT, /parameters.timeout must be a whole number/],
      [{ ...ok, parameters: { task: str('missing') } }, grpc.status.NOT_FOUND, /task "missing" does not exist/],
      [{ ...ok, parameters: { method: str('magic') } }, grpc.status.INVALID_ARGUMENT, /inference.method must be one of/],
    ];
    for (const [request, code, message] of cases) await rejectsWith(unary(client, 'ModelInfer', request), code, message);
    assert.equal((await unary(client, 'ModelInfer', ok)).outputs.length, 5, 'still serving');
  });

  it('ignores unknown parameters, honours requested outputs, versions, image shapes and per-task models', async () => {
    const x = randomExamples(2, SIZE, 32);
    const given = engine.classify(engine.validate({ inputs: x.flat, batch: 2, task: 'random-3' }));
    const input = (shape: number[]) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape }], raw_input_contents: [raw32(x.flat)] });
    const a = await unary(client, 'ModelInfer', {
      model_name: 'supsup',
      model_version: '1',
      ...input([2, 1, 28, 28]),
      parameters: { task: str('random-3'), temperature: str('2'), priority: { uint64_param: 1 }, timeout: { int64_param: 5_000_000 }, binary_data_output: { bool_param: true } },
      outputs: [{ name: 'task_unknown' }, { name: 'label' }],
    });
    assert.equal(a.model_version, '1');
    assert.deepEqual(a.outputs.map((o: any) => o.name), ['task_unknown', 'label']);
    assert.equal(a.raw_output_contents.length, 2);
    assert.deepEqual([0, 1].map((i) => Number(a.raw_output_contents[1].readBigInt64LE(8 * i))), given.map((p) => p.label));
    for (const version of ['', '1']) {
      const b = await unary(client, 'ModelInfer', { model_name: 'random-3', model_version: version, ...input([2, 28, 28]) });
      assert.equal(b.model_name, 'random-3');
      assert.equal(b.parameters.task_inferred.bool_param ?? false, false);
      assertSame(decodeOutputs(b), given);
    }
  });
});
