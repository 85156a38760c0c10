import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Architecture } from '../src/core/architecture.ts';
import { HopfieldEngine } from '../src/core/hopfield-engine.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { cueOfTask, createHopfieldModel, loadHopfieldModel } from '../src/model/hopfield-model.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, rejectsWith, unary } from './support/grpc-calls.ts';
import { ADMIN_TOKEN, type TestService, http, maskBase64, randomExamples, startTestService, tempDir, testConfig } from './support/service-fixture.ts';

/** A small HopSupSup network on MNIST-sized inputs: 784 → 64 → 32 → 10, three random tasks. */
const ARCH: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 10, classes: 10 };

function randomMasks(seed: number): Uint8Array[] {
  const rng = new Xoshiro128(seed);
  return ARCH.hidden.map((d) => Uint8Array.from({ length: d }, () => rng.nextUint32() & 1));
}

/** The masks of both layers packed as one PUT /tasks mask: neuron n (layer 0 first) is bit n & 31 of word n >>> 5. */
function packNeurons(masks: Uint8Array[]): Uint32Array {
  const bits = masks.flatMap((m) => Array.from(m));
  const words = new Uint32Array(Math.ceil(bits.length / 32));
  bits.forEach((b, n) => (words[n >>> 5] |= b << (n & 31)));
  return words;
}

async function directEngine(dir: string): Promise<HopfieldEngine> {
  const model = await loadHopfieldModel(dir);
  const tasks = model.manifest.tasks.map((t) => ({ id: t.id, cues: ARCH.hidden.map((_, l) => cueOfTask(model.manifest, t, l)) }));
  return new HopfieldEngine({ architecture: ARCH, seed: model.manifest.seed, reservoirs: model.reservoirs, tasks });
}

function assertError(reply: { status: number; body: any }, status: number, code: string, message: RegExp) {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body?.error?.code, code);
  assert.match(reply.body.error.message, message);
}

function close(a: number[], b: number[]) {
  assert.equal(a.length, b.length);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5, `${i}: ${v} vs ${b[i]}`));
}

describe('serving a HopSupSup model', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;
  let service: TestService;
  let classifier: DynamicClient;
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

  before(async () => {
    await selectBackend('wasm');
    tmp = await tempDir('supsup-hopfield-');
    dir = join(tmp.dir, 'model');
    await createHopfieldModel(dir, { architecture: ARCH, seed: 5, rule: 'storkey', cueBits: 16 }, ['a', 'b', 'c'].map((id, k) => ({ id, name: `Task ${id}`, masks: randomMasks(k + 1) })));
    service = await startTestService(testConfig(dir, { adminToken: ADMIN_TOKEN, maxBatch: 64 }));
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    classifier = new pkg.supsup.v1.Classifier(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    classifier?.close();
    await service?.close();
    await tmp?.remove();
  });

  it('loads the model: its tasks, the reservoir size as the bank size', async () => {
    const model = (await http('GET', `${service.url}/model`)).body;
    assert.equal(model.tasks, 3, JSON.stringify(model));
    const tasks = (await http('GET', `${service.url}/tasks`)).body.tasks;
    assert.deepEqual(tasks.map((t: any) => t.id), ['a', 'b', 'c']);
  });

  it('POST /classify with a task uses the mask its cue recalls; without one recalls it from the batch', async () => {
    const engine = await directEngine(dir);
    const x = randomExamples(6, 784, 3);
    for (const task of ['b', undefined]) {
      const reply = await http('POST', `${service.url}/classify`, { inputs: x.rows, ...(task ? { task } : {}) });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      const want = engine.classify({ inputs: x.flat, batch: 6, task, inference: {} as never, topK: 0 });
      reply.body.predictions.forEach((p: any, i: number) => {
        assert.equal(p.label, want[i].label);
        close(p.probabilities, want[i].probabilities);
        assert.equal(p.task.id, want[i].task.id);
        assert.equal(p.task.inferred, task === undefined);
      });
      // gRPC Infer answers the same.
      const grpcReply = await unary(classifier, 'Infer', { inputs: Buffer.from(x.flat.buffer, x.flat.byteOffset, x.flat.byteLength), shape: [6, 784], ...(task ? { task } : {}) });
      grpcReply.predictions.forEach((p: any, i: number) => assert.equal(p.label, want[i].label));
    }
    engine.dispose();
  });

  it('refuses a batch of one with a reason, over REST and gRPC', async () => {
    const x = randomExamples(1, 784, 4);
    assertError(await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'a' }), 400, 'invalid_argument', /normalises over the batch.*at least 2 examples/);
    await rejectsWith(unary(classifier, 'Infer', { inputs: Buffer.from(x.flat.buffer, x.flat.byteOffset, x.flat.byteLength), shape: [1, 784] }), grpc.status.INVALID_ARGUMENT, /at least 2 examples/);
  });

  it('PUT /tasks adds a mask to Ψ durably and it is used at once; DELETE says why it cannot be', async () => {
    const masks = randomMasks(40);
    const put = await http('PUT', `${service.url}/tasks/d`, { mask: maskBase64(packNeurons(masks)), name: 'Task d', transform: { kind: 'identity' } }, auth);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const onDisk = await loadHopfieldModel(dir);
    assert.deepEqual(onDisk.manifest.tasks.map((t) => t.id), ['a', 'b', 'c', 'd']);
    assert.equal(onDisk.reservoirs[0].count, 4);
    const engine = await directEngine(dir);
    assert.deepEqual(engine.maskOf('d'), masks, 'the new task is recalled from its cue');
    const x = randomExamples(4, 784, 8);
    const reply = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'd' });
    const want = engine.classify({ inputs: x.flat, batch: 4, task: 'd', inference: {} as never, topK: 0 });
    reply.body.predictions.forEach((p: any, i: number) => close(p.probabilities, want[i].probabilities));
    engine.dispose();
    assertError(
      await http('PUT', `${service.url}/tasks/e`, { mask: maskBase64(new Uint32Array(2)), name: 'E', transform: { kind: 'identity' } }, auth),
      400,
      'invalid_argument',
      /96 neuron bits \(64 \+ 32\) in 3 32-bit words, got 2/,
    );
    assertError(await http('PUT', `${service.url}/tasks/d`, { mask: maskBase64(packNeurons(masks)), name: 'D', transform: { kind: 'identity' } }, auth), 409, 'already_exists', /already exists/);
    assertError(await http('DELETE', `${service.url}/tasks/a`, undefined, auth), 409, 'failed_precondition', /cannot remove a task/);
    assert.equal((await loadHopfieldModel(dir)).manifest.tasks.length, 4, 'refusals changed nothing on disk');
  });
});
