import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { maskWords } from '../src/core/architecture.ts';
import type { Engine } from '../src/core/engine.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { loadModel } from '../src/model/model-store.ts';
import { PACKAGE_VERSION } from '../src/service/version.ts';
import { randomMask } from '../src/model/random-model.ts';
import {
  ADMIN_TOKEN,
  TINY,
  type TestService,
  directEngine,
  float32Base64,
  http,
  maskBase64,
  randomExamples,
  startTestService,
  tempDir,
  testConfig,
  tinyModel,
} from './support/service-fixture.ts';

const SIZE = TINY.inputSize;

function assertSamePredictions(actual: any[], expected: ReturnType<Engine['classify']>) {
  assert.equal(actual.length, expected.length);
  actual.forEach((p, i) => {
    const e = expected[i];
    assert.equal(p.label, e.label, `label of example ${i}`);
    assert.deepEqual(p.task, e.task, `task of example ${i}`);
    assert.equal(p.probabilities.length, TINY.classes);
    p.probabilities.forEach((v: number, c: number) => assert.ok(Math.abs(v - e.probabilities[c]) < 1e-6, `probability ${c} of example ${i}`));
    if (e.topK) assert.deepEqual(p.topK.map((t: any) => t.label), e.topK.map((t) => t.label));
  });
}

function assertError(reply: { status: number; body: any }, status: number, code: string, message: RegExp) {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body?.error?.code, code, JSON.stringify(reply.body));
  assert.match(reply.body.error.message, message);
}

/** One request with the path exactly as given (fetch would resolve `.` and `..` segments first). */
function rawRequest(method: string, url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  const path = url.slice(url.indexOf('/', 'http://'.length));
  return new Promise((resolve, reject) => {
    const req = request({ method, hostname, port, path, headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject).end(body);
  });
}

describe('REST service', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let modelDir: string;
  let service: TestService;
  let engine: Engine;
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };

  before(async () => {
    tmp = await tempDir();
    modelDir = await tinyModel(tmp.dir, 5);
    service = await startTestService(testConfig(modelDir, { adminToken: ADMIN_TOKEN, maxBatch: 64, bodyLimit: 512 * 1024, logLevel: (process.env.LOG as 'info') ?? 'silent' }));
    engine = await directEngine(modelDir, 64);
  });
  after(async () => {
    await service?.close();
    engine?.dispose();
    await tmp?.remove();
  });

  it('is live and ready, and reports the model', async () => {
    assert.equal((await http('GET', `${service.url}/healthz`)).status, 200);
    const ready = await http('GET', `${service.url}/readyz`);
    assert.deepEqual([ready.status, ready.body], [200, { ready: true }]);
    const model = await http('GET', `${service.url}/model`);
    assert.equal(model.body.tasks, 5);
    assert.deepEqual(model.body.architecture, TINY);
    assert.equal(model.body.backend, 'wasm');
    assert.equal(model.body.kernels, 'typescript');
  });

  it('classifies with a given task exactly as the engine does (JSON rows, float32 and uint8 base64)', async () => {
    const x = randomExamples(3, SIZE, 11);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 3, task: 'random-2', topK: 3 }));
    const json = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-2', topK: 3 });
    assert.equal(json.status, 200, JSON.stringify(json.body));
    assertSamePredictions(json.body.predictions, expected);
    assert.equal(json.body.predictions[0].topK.length, 3);
    const f32 = await http('POST', `${service.url}/classify`, { inputsBase64: float32Base64(x.flat), dtype: 'float32', shape: [3, SIZE], task: 'random-2', topK: 3 });
    assertSamePredictions(f32.body.predictions, expected);
    const u8 = await http('POST', `${service.url}/classify`, { inputsBase64: Buffer.from(x.bytes).toString('base64'), dtype: 'uint8', shape: [3, SIZE], task: 'random-2', topK: 3 });
    assertSamePredictions(u8.body.predictions, expected);
    assert.ok(json.body.predictions.every((p: any) => p.task.id === 'random-2' && !p.task.inferred && p.task.confidence === 1));
  });

  it('infers the task exactly as the engine does, for every method and decision mode', async () => {
    const x = randomExamples(4, SIZE, 12);
    for (const inference of [{}, { method: 'binary' }, { decideFrom: 'each' }, { decideFrom: 'batch', objective: 'superfluous' }, { method: 'binary', decideFrom: 'each' }]) {
      const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 4, inference }));
      const reply = await http('POST', `${service.url}/classify`, { inputs: x.rows, inference });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assertSamePredictions(reply.body.predictions, expected);
      assert.ok(reply.body.predictions.every((p: any) => p.task.inferred === true));
    }
  });

  it('refuses every malformed classify request with a 4xx JSON error that says what is wrong', async () => {
    const url = `${service.url}/classify`;
    const row = new Array(SIZE).fill(0.5);
    const nan = new Float32Array(2 * SIZE).fill(0.1);
    nan[SIZE + 7] = NaN;
    const inf = new Float32Array(SIZE).fill(0.1);
    inf[3] = Infinity;
    const cases: [string, unknown, number, string, RegExp][] = [
      ['not JSON', '{"inputs": [[1,2', 400, 'invalid_argument', /not valid JSON/],
      ['a JSON array', [row], 400, 'invalid_argument', /must be a JSON object/],
      ['inputs not an array', { inputs: 'abc' }, 400, 'invalid_argument', /inputs must be an array/],
      ['a row not an array', { inputs: [5] }, 400, 'invalid_argument', /inputs\[0\] must be an array/],
      ['a string value', { inputs: [[...row.slice(1), '0.5']] }, 400, 'invalid_argument', /inputs\[0\]\[783\] must be a number, got string/],
      ['a null value', { inputs: [[null, ...row.slice(1)]] }, 400, 'invalid_argument', /inputs\[0\]\[0\] must be a number, got null/],
      ['wrong input length', { inputs: [row.slice(1)] }, 400, 'invalid_argument', /each example must have 784 values/],
      ['ragged rows', { inputs: [row, row.slice(1)] }, 400, 'invalid_argument', /every example must have the same length/],
      ['empty batch', { inputs: [] }, 400, 'invalid_argument', /at least one example/],
      ['batch over the limit', { inputsBase64: float32Base64(new Float32Array(65 * SIZE)), shape: [65, SIZE] }, 400, 'invalid_argument', /over the limit of 64/],
      ['NaN in float32', { inputsBase64: float32Base64(nan), dtype: 'float32', shape: [2, SIZE] }, 400, 'invalid_argument', /inputs\[1\]\[7\] is not a finite number/],
      ['Infinity in float32', { inputsBase64: float32Base64(inf), shape: [1, SIZE] }, 400, 'invalid_argument', /inputs\[0\]\[3\] is not a finite number/],
      ['bytes not matching shape', { inputsBase64: float32Base64(inf), shape: [2, SIZE] }, 400, 'invalid_argument', /holds 3136 bytes, but shape \[2, 784\] of float32 needs 6272/],
      ['bad base64', { inputsBase64: 'abc$', shape: [1, 3] }, 400, 'invalid_argument', /not valid base64/],
      ['bad dtype', { inputsBase64: '', dtype: 'float64', shape: [0, SIZE] }, 400, 'invalid_argument', /dtype must be one of "float32", "uint8"/],
      ['bad shape', { inputsBase64: '', shape: [SIZE] }, 400, 'invalid_argument', /shape must be \[examples, values per example\]/],
      ['both input forms', { inputs: [row], inputsBase64: '' }, 400, 'invalid_argument', /either inputs or inputsBase64/],
      ['no inputs', { task: 'random-0' }, 400, 'invalid_argument', /inputs is required/],
      ['unknown field', { inputs: [row], taks: 'random-0' }, 400, 'invalid_argument', /unknown field "taks"/],
      ['unknown inference option', { inputs: [row], inference: { method: 'one-shot', steps: 3 } }, 400, 'invalid_argument', /unknown inference option "steps"/],
      ['bad inference method', { inputs: [row], inference: { method: 'gradient' } }, 400, 'invalid_argument', /inference.method must be one of/],
      ['bad topK', { inputs: [row], topK: 11 }, 400, 'invalid_argument', /topK must be an integer from 0 to 10/],
      ['task not a string', { inputs: [row], task: 3 }, 400, 'invalid_argument', /task must be a string/],
      ['unknown task', { inputs: [row], task: 'nope' }, 404, 'not_found', /task "nope" does not exist/],
    ];
    for (const [what, body, status, code, message] of cases) {
      const reply = await http('POST', url, body);
      assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body?.error?.code, code, what);
      assert.match(reply.body.error.message, message, what);
    }
    assertError(await http('POST', url, JSON.stringify({ inputs: [row] }), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', /application\/json/);
    assertError(await http('POST', url, ''), 400, 'invalid_argument', /body is empty/);
    const big = { inputs: Array.from({ length: 64 }, () => row.map(() => 0.123456789)) };
    assertError(await http('POST', url, big), 413, 'payload_too_large', /over the server's limit of 524288 bytes/);
    assertError(await http('GET', `${service.url}/nope`), 404, 'not_found', /no route GET \/nope/);
    // Nothing above hurt the server.
    assert.equal((await http('POST', url, { inputs: [row], task: 'random-0' })).status, 200);
  });

  it('lists tasks and shows one', async () => {
    const list = await http('GET', `${service.url}/tasks`);
    assert.deepEqual(list.body.tasks.map((t: any) => t.id), ['random-0', 'random-1', 'random-2', 'random-3', 'random-4']);
    const one = await http('GET', `${service.url}/tasks/random-1`);
    assert.equal(one.body.id, 'random-1');
    assert.ok(one.body.density > 0.4 && one.body.density < 0.6);
    assert.deepEqual(one.body.transform, { kind: 'identity' });
    assert.match(one.body.addedAt, /^\d{4}-\d\d-\d\dT/);
    assertError(await http('GET', `${service.url}/tasks/missing`), 404, 'not_found', /task "missing" does not exist/);
  });

  it('adds a task live and durably, classifies with it, deletes it, then answers 404', async () => {
    const mask = randomMask(TINY, 0.5, new Xoshiro128(99));
    const body = { mask: maskBase64(mask), name: 'Rotated 30', transform: { kind: 'rotation', degrees: 30 } };
    const put = await http('PUT', `${service.url}/tasks/rot-30`, body, auth);
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.headers.get('location'), '/tasks/rot-30');
    assert.deepEqual([put.body.id, put.body.name, put.body.transform], ['rot-30', 'Rotated 30', { kind: 'rotation', degrees: 30 }]);
    // On disk before the 201.
    const onDisk = await loadModel(modelDir);
    assert.deepEqual(onDisk.masks.get('rot-30'), mask);
    // Used by the next request, exactly as the engine would with the same mask.
    engine.addTask('rot-30', mask);
    const x = randomExamples(2, SIZE, 13);
    const reply = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'rot-30' });
    assertSamePredictions(reply.body.predictions, engine.classify(engine.validate({ inputs: x.flat, batch: 2, task: 'rot-30' })));
    const inferred = await http('POST', `${service.url}/classify`, { inputs: x.rows });
    assertSamePredictions(inferred.body.predictions, engine.classify(engine.validate({ inputs: x.flat, batch: 2 })));
    assert.equal((await http('GET', `${service.url}/model`)).body.tasks, 6);
    assertError(await http('PUT', `${service.url}/tasks/rot-30`, body, auth), 409, 'already_exists', /already exists/);

    const del = await http('DELETE', `${service.url}/tasks/rot-30`, undefined, auth);
    assert.equal(del.status, 204);
    engine.removeTask('rot-30');
    assert.equal((await loadModel(modelDir)).masks.has('rot-30'), false);
    assertError(await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'rot-30' }), 404, 'not_found', /task "rot-30" does not exist/);
    assertError(await http('GET', `${service.url}/tasks/rot-30`), 404, 'not_found', /does not exist/);
    assertError(await http('DELETE', `${service.url}/tasks/rot-30`, undefined, auth), 404, 'not_found', /does not exist/);
  });

  it('refuses a bad upload and changes nothing', async () => {
    const before = await loadModel(modelDir);
    const words = maskWords(TINY);
    const cases: [unknown, RegExp][] = [
      [{ mask: maskBase64(new Uint32Array(words - 1)) }, new RegExp(`${words} words`)],
      [{ mask: 'abc' }, /not valid base64/],
      [{ mask: Buffer.from([1, 2, 3]).toString('base64') }, /whole number of 32-bit words/],
      [{ mask: maskBase64(new Uint32Array(words).fill(0xffffffff)) }, /bits? past|padding/],
      [{ mask: maskBase64(new Uint32Array(words)), transform: { kind: 'spin' } }, /transform/],
      [{ mask: maskBase64(new Uint32Array(words)), colour: 'red' }, /unknown field "colour"/],
      [{ name: 'no mask' }, /mask is required/],
    ];
    for (const [body, message] of cases) assertError(await http('PUT', `${service.url}/tasks/bad`, body, auth), 400, 'invalid_argument', message);
    assertError(await http('PUT', `${service.url}/tasks/${'x'.repeat(65)}`, { mask: maskBase64(new Uint32Array(words)) }, auth), 400, 'invalid_argument', /does not match/);
    // `.` and `..` cannot be URL path segments: fetch resolves /tasks/%2E%2E to /, so this sends the path as written.
    for (const id of ['.', '..', '%2E', '%2e%2E']) {
      const reply = await rawRequest('PUT', `${service.url}/tasks/${id}`, JSON.stringify({ mask: maskBase64(new Uint32Array(words)) }), auth);
      assert.equal(reply.status, 400, `PUT /tasks/${id}: ${reply.status} ${reply.text}`);
      assert.match(reply.text, /"code":"invalid_argument"/);
      assert.match(reply.text, /does not match/);
    }
    const after = await loadModel(modelDir);
    assert.deepEqual(after.manifest.tasks, before.manifest.tasks);
    assert.equal(after.manifest.masks.bytes, before.manifest.masks.bytes);
    assert.equal((await http('GET', `${service.url}/tasks`)).body.tasks.length, 5);
  });

  it('needs the admin bearer token to change tasks', async () => {
    const body = { mask: maskBase64(new Uint32Array(maskWords(TINY))) };
    assertError(await http('PUT', `${service.url}/tasks/t-auth`, body), 401, 'unauthenticated', /Authorization: Bearer/);
    const wrong = await http('PUT', `${service.url}/tasks/t-auth`, body, { authorization: 'Bearer not-the-token-at-all' });
    assertError(wrong, 401, 'unauthenticated', /not the admin token/);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer/);
    assertError(await http('DELETE', `${service.url}/tasks/random-0`, undefined, { authorization: 'Basic abc' }), 401, 'unauthenticated', /Bearer/);
    assert.equal((await http('GET', `${service.url}/tasks/t-auth`)).status, 404);
    assert.equal((await http('PUT', `${service.url}/tasks/t-auth`, body, auth)).status, 201);
    assert.equal((await http('DELETE', `${service.url}/tasks/t-auth`, undefined, auth)).status, 204);
  });

  it('serves Prometheus metrics with the supsup_ series', async () => {
    const { maskBankBytes } = (await http('GET', `${service.url}/model`)).body;
    assert.ok(maskBankBytes >= 5 * maskWords(TINY) * 4);
    const reply = await fetch(`${service.url}/metrics`);
    assert.match(reply.headers.get('content-type') ?? '', /text\/plain/);
    const text = await reply.text();
    for (const series of [
      /^supsup_requests_total\{protocol="http",route="\/classify",outcome="ok"\} \d+/m,
      /^supsup_requests_total\{protocol="http",route="\/classify",outcome="invalid_argument"\} \d+/m,
      /^supsup_request_duration_seconds_bucket\{le="0.005",protocol="http",route="\/classify"\} \d+/m,
      /^supsup_request_duration_seconds_bucket\{le="0.0001",protocol="http",route="\/classify"\} \d+/m,
      /^supsup_inference_duration_seconds_bucket\{le="0.0001",mode="given"\} \d+/m,
      new RegExp(`^supsup_build_info\\{version="${PACKAGE_VERSION}",node="${process.version}",simd="(avx512|avx2|scalar|none)"(,commit="[0-9a-f]{7,40}")?\\} 1$`, 'm'),
      /^supsup_queue_wait_seconds_count \d+/m,
      /^supsup_inference_duration_seconds_count\{mode="given"\} \d+/m,
      /^supsup_inference_duration_seconds_count\{mode="inferred"\} \d+/m,
      /^supsup_batch_size_bucket\{le="1"\} \d+/m,
      /^supsup_task_inference_total\{outcome="given"\} [1-9]\d*/m,
      /^supsup_task_inference_total\{outcome="inferred"\} [1-9]\d*/m,
      /^supsup_task_inference_total\{outcome="unknown"\} \d+/m,
      /^supsup_tasks_loaded 5$/m,
      new RegExp(`^supsup_mask_bank_bytes ${maskBankBytes}$`, 'm'),
      /^supsup_queue_depth 0$/m,
      /^supsup_tensors \d+$/m,
      /^process_resident_memory_bytes \d+/m,
      /^nodejs_eventloop_lag_seconds /m,
    ]) {
      assert.match(text, series);
    }
  });

  it('publishes an OpenAPI document and its UI', async () => {
    const doc = await http('GET', `${service.url}/openapi.json`);
    assert.equal(doc.status, 200);
    assert.match(doc.body.openapi, /^3\./);
    for (const path of ['/classify', '/tasks', '/tasks/{id}', '/healthz', '/readyz', '/metrics']) assert.ok(doc.body.paths[path], path);
    assert.ok(doc.body.paths['/classify'].post.requestBody);
    const ui = await fetch(`${service.url}/docs`, { redirect: 'follow' });
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /swagger/i);
  });

  it('speaks the Open Inference Protocol v2 on the same engine', async () => {
    assert.equal((await http('GET', `${service.url}/v2/health/live`)).status, 200);
    assert.equal((await http('GET', `${service.url}/v2/health/ready`)).status, 200);
    assert.equal((await http('GET', `${service.url}/v2/models/supsup/ready`)).status, 200);
    assert.equal((await http('GET', `${service.url}/v2`)).body.name, 'supsup');
    const meta = await http('GET', `${service.url}/v2/models/supsup`);
    assert.deepEqual(meta.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, SIZE] }]);
    const x = randomExamples(2, SIZE, 14);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 2, task: 'random-3' }));
    const infer = await http('POST', `${service.url}/v2/models/supsup/infer`, {
      id: 'r1',
      parameters: { task: 'random-3' },
      inputs: [{ name: 'x', shape: [2, SIZE], datatype: 'FP32', data: Array.from(x.flat) }],
    });
    assert.equal(infer.status, 200, JSON.stringify(infer.body));
    assert.equal(infer.body.id, 'r1');
    const labels = infer.body.outputs.find((o: any) => o.name === 'label');
    assert.deepEqual(labels.data, expected.map((p) => p.label));
    const uint8 = await http('POST', `${service.url}/v2/models/supsup/infer`, {
      inputs: [{ name: 'x', shape: [2, SIZE], datatype: 'UINT8', data: Array.from(x.bytes) }],
    });
    const tasks = uint8.body.outputs.find((o: any) => o.name === 'task');
    assert.deepEqual(tasks.data, engine.classify(engine.validate({ inputs: x.flat, batch: 2 })).map((p) => p.task.id));
    const bad = await http('POST', `${service.url}/v2/models/supsup/infer`, { inputs: [{ name: 'x', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /each example must have 784 values/);
    assert.equal((await http('GET', `${service.url}/v2/models/other`)).status, 404);
  });
});

describe('REST service without an admin token', () => {
  it('disables task management with a clear error', async () => {
    const tmp = await tempDir();
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 2)));
    try {
      const body = { mask: maskBase64(new Uint32Array(maskWords(TINY))) };
      for (const reply of [
        await http('PUT', `${service.url}/tasks/x`, body, { authorization: `Bearer ${ADMIN_TOKEN}` }),
        await http('DELETE', `${service.url}/tasks/random-0`),
      ]) {
        assertError(reply, 403, 'permission_denied', /task management is disabled: start the server with --admin-token or SUPSUP_ADMIN_TOKEN/);
      }
      assert.equal((await http('GET', `${service.url}/tasks`)).body.tasks.length, 2);
    } finally {
      await service.close();
      await tmp.remove();
    }
  });
});
