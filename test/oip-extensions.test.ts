import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, OIP_PROTO_PATH } from '../src/service/grpc/server.ts';
import { oipModelConfig } from '../src/service/oip/model-config.ts';
import { ModelStatistics } from '../src/service/oip/statistics.ts';
import { type DynamicClient, rejectsWith, unary } from './support/grpc-calls.ts';
import { TINY, type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** Triton's model configuration, statistics and model repository extensions, REST and gRPC over the same functions. */
const LIMITS = { inputSize: 784, classes: 10, maxBatch: 256, hasSuperfluous: true, epsilon: 0.125, rerank: 4 };

describe('Triton extensions: the pieces', () => {
  it('model configuration: batched tensors without the batch dimension, scalars as [1] reshaped to [], the queue settings', () => {
    const c = oipModelConfig({ name: 'random-0', task: 'random-0' }, LIMITS, { maxQueue: 8, maxWaitMs: 2, timeoutMs: 30_000 });
    assert.equal(c.max_batch_size, 256);
    assert.deepEqual(c.input, [{ name: 'x', data_type: 'TYPE_FP32', dims: [784], format: 'FORMAT_NONE' }]);
    assert.deepEqual(c.output[0], { name: 'probabilities', data_type: 'TYPE_FP32', dims: [10] });
    assert.deepEqual(c.output[1], { name: 'label', data_type: 'TYPE_INT64', dims: [1], reshape: { shape: [] } });
    assert.equal(c.output[2].data_type, 'TYPE_STRING', 'BYTES is TYPE_STRING in a Triton configuration');
    assert.equal(c.dynamic_batching.max_queue_delay_microseconds, 2000);
    assert.equal(c.dynamic_batching.default_queue_policy.max_queue_size, 8);
    assert.equal(c.parameters.task.string_value, 'random-0');
    assert.equal(c.parameters.input_datatypes.string_value, 'FP32,FP64,UINT8');
  });

  it('statistics: counts and cumulative ns; calls merged into one pass are one execution, per batch size', () => {
    const s = new ModelStatistics();
    const pass = (n: number, examples: number) => ({ pass: n, examples, queueMs: 1, computeMs: 2 });
    s.success('m', { examples: 3, totalMs: 5, inputMs: 0.5, outputMs: 0.25, pass: pass(1, 7) }, 1000);
    s.success('m', { examples: 4, totalMs: 6, inputMs: 0.5, outputMs: 0.25, pass: pass(1, 7) }, 1001);
    s.success('m', { examples: 2, totalMs: 4, inputMs: 0.5, outputMs: 0.25, pass: pass(2, 2) }, 1002);
    s.failure('m', 0.001);
    const [m, other] = s.report(['m', 'never']).model_stats;
    assert.equal(m.inference_count, 9);
    assert.equal(m.execution_count, 2);
    assert.equal(m.last_inference, 1002);
    assert.deepEqual(m.inference_stats.success, { count: 3, ns: 15_000_000 });
    assert.deepEqual(m.inference_stats.fail, { count: 1, ns: 1000 });
    assert.deepEqual(m.inference_stats.queue, { count: 3, ns: 3_000_000 });
    assert.deepEqual(m.inference_stats.compute_infer, { count: 3, ns: 6_000_000 });
    assert.deepEqual(
      m.batch_stats.map((b) => [b.batch_size, b.compute_infer.count]),
      [
        [2, 1],
        [7, 1],
      ],
    );
    assert.deepEqual(other.inference_stats.success, { count: 0, ns: 0 });
    assert.equal(other.version, '1');
  });
});

describe('Triton extensions: REST and gRPC', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let client: DynamicClient;
  const x = randomExamples(3, TINY.inputSize, 17);
  const infer = (n = 3) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [n, TINY.inputSize], data: Array.from(x.flat.subarray(0, n * TINY.inputSize)) }] });

  before(async () => {
    tmp = await tempDir();
    service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { maxQueue: 7, maxWaitMs: 0 }));
    const proto = grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any;
    client = new proto.inference.GRPCInferenceService(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await service?.close();
    await tmp?.remove();
  });

  it('server metadata lists the extensions, REST and gRPC', async () => {
    const rest = (await http('GET', `${service.url}/v2`)).body;
    for (const e of ['binary_tensor_data', 'model_configuration', 'statistics', 'model_repository']) assert.ok(rest.extensions.includes(e), e);
    assert.deepEqual((await unary(client, 'ServerMetadata', {})).extensions, rest.extensions);
  });

  it('model configuration, with and without the version, the same over gRPC; unknown model or version is not found', async () => {
    const main = await http('GET', `${service.url}/v2/models/supsup/config`);
    assert.equal(main.status, 200);
    assert.equal(main.body.name, 'supsup');
    assert.equal(main.body.max_batch_size, 256);
    assert.equal(main.body.dynamic_batching.default_queue_policy.max_queue_size, 7);
    const task = await http('GET', `${service.url}/v2/models/random-1/versions/1/config`);
    assert.equal(task.body.parameters.task.string_value, 'random-1');
    assert.equal((await http('GET', `${service.url}/v2/models/nope/config`)).status, 404);
    assert.equal((await http('GET', `${service.url}/v2/models/supsup/versions/2/config`)).status, 404);
    const { config } = await unary(client, 'ModelConfig', { name: 'random-1', version: '1' });
    assert.equal(config.name, 'random-1');
    assert.equal(config.max_batch_size, 256);
    assert.deepEqual(config.input[0], { name: 'x', data_type: 'TYPE_FP32', format: 'FORMAT_NONE', dims: [784] });
    assert.deepEqual(config.output[1].reshape.shape ?? [], [], 'reshaped to a scalar (an empty repeated field is not on the wire)');
    assert.equal(config.dynamic_batching.default_queue_policy.max_queue_size, 7);
    assert.equal(config.instance_group[0].kind, 'KIND_CPU');
    assert.equal(config.parameters.task.string_value, 'random-1');
    await rejectsWith(unary(client, 'ModelConfig', { name: 'nope' }), grpc.status.NOT_FOUND, /unknown model/);
  });

  it('statistics count what was served, per model (the main one and each task), REST and gRPC alike', async () => {
    assert.equal((await http('POST', `${service.url}/v2/models/supsup/infer`, infer(3))).status, 200);
    assert.equal((await http('POST', `${service.url}/v2/models/random-0/infer`, infer(2))).status, 200);
    const raw = Buffer.from(x.flat.buffer, x.flat.byteOffset, 4 * TINY.inputSize);
    await unary(client, 'ModelInfer', { model_name: 'random-0', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, TINY.inputSize] }], raw_input_contents: [raw] });
    const bad = await http('POST', `${service.url}/v2/models/random-0/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] });
    assert.equal(bad.status, 400);

    const all = (await http('GET', `${service.url}/v2/models/stats`)).body.model_stats;
    assert.deepEqual(
      all.map((m: any) => m.name),
      ['supsup', 'random-0', 'random-1'],
    );
    const [main, task, idle] = all;
    assert.equal(main.inference_count, 3);
    assert.equal(main.execution_count, 1);
    assert.equal(main.inference_stats.success.count, 1);
    assert.ok(main.inference_stats.success.ns > 0 && main.inference_stats.compute_infer.ns > 0);
    assert.ok(main.inference_stats.compute_infer.ns <= main.inference_stats.success.ns);
    assert.ok(Math.abs(main.last_inference - Date.now()) < 60_000);
    assert.equal(task.inference_count, 3, '2 examples over REST, 1 over gRPC');
    assert.equal(task.inference_stats.success.count, 2);
    assert.equal(task.inference_stats.fail.count, 1, 'the invalid request');
    assert.deepEqual(
      task.batch_stats.map((b: any) => b.batch_size),
      [1, 2],
    );
    assert.equal(idle.inference_count, 0);
    assert.equal(idle.last_inference, 0);

    const one = (await http('GET', `${service.url}/v2/models/random-0/versions/1/stats`)).body.model_stats;
    assert.deepEqual(one, [task]);
    assert.equal((await http('GET', `${service.url}/v2/models/nope/stats`)).status, 404);
    const viaGrpc = await unary(client, 'ModelStatistics', { name: 'random-0', version: '1' });
    assert.equal(viaGrpc.model_stats[0].inference_count, 3);
    assert.equal(viaGrpc.model_stats[0].inference_stats.fail.count, 1);
    assert.equal(viaGrpc.model_stats[0].inference_stats.success.ns, task.inference_stats.success.ns);
    assert.equal((await unary(client, 'ModelStatistics', {})).model_stats.length, 3);
    await rejectsWith(unary(client, 'ModelStatistics', { name: 'nope' }), grpc.status.NOT_FOUND, /unknown model/);
  });

  it('repository index lists every model READY; load succeeds for a model that exists; unload is refused', async () => {
    const index = await http('POST', `${service.url}/v2/repository/index`);
    assert.equal(index.status, 200);
    assert.deepEqual(index.body, ['supsup', 'random-0', 'random-1'].map((name) => ({ name, version: '1', state: 'READY', reason: '' })));
    assert.deepEqual((await http('POST', `${service.url}/v2/repository/index`, { ready: true })).body, index.body);
    const bad = await http('POST', `${service.url}/v2/repository/index`, { ready: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /ready must be a boolean/);
    assert.equal((await http('POST', `${service.url}/v2/repository/models/random-0/load`)).status, 200);
    const missing = await http('POST', `${service.url}/v2/repository/models/nope/load`);
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /PUT \/tasks/);
    const unload = await http('POST', `${service.url}/v2/repository/models/random-0/unload`);
    assert.equal(unload.status, 409);
    assert.match(unload.body.error, /DELETE \/tasks/);

    const { models } = await unary(client, 'RepositoryIndex', { ready: true });
    assert.deepEqual(models, index.body);
    assert.deepEqual(await unary(client, 'RepositoryModelLoad', { model_name: 'supsup' }), {});
    await rejectsWith(unary(client, 'RepositoryModelLoad', { model_name: 'nope' }), grpc.status.NOT_FOUND, /PUT \/tasks/);
    await rejectsWith(unary(client, 'RepositoryModelUnload', { model_name: 'random-1' }), grpc.status.FAILED_PRECONDITION, /DELETE \/tasks/);
  });
});
