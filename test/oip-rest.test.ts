import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Engine } from '../src/core/engine.ts';
import { TINY, type TestService, directEngine, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/**
 * The Open Inference Protocol over REST as Triton's and KServe's stock clients speak it (issue 11): the binary
 * tensor data extension both ways, parameters, requested outputs, versioned routes, shapes, per-task models.
 * Bodies are built here byte by byte from the protocol's documents, not with the server's own encoder.
 */
const SIZE = TINY.inputSize;

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A POST with exactly these bytes and headers (no content type unless given, as Triton's client sends). */
function post(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A binary-extension request: the JSON header, then the tensors' bytes. */
function binaryRequest(header: object, ...tensors: Buffer[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headers: { 'inference-header-content-length': String(json.length) } };
}

/** A binary-extension answer read back: the JSON header and each binary output's bytes, by name. */
function readBinaryReply(r: RawReply): { header: any; raw: Record<string, Buffer> } {
  const length = Number(r.headers['inference-header-content-length']);
  assert.ok(Number.isInteger(length) && length > 0, 'Inference-Header-Content-Length is set');
  const header = JSON.parse(r.body.subarray(0, length).toString('utf8'));
  const raw: Record<string, Buffer> = {};
  let at = length;
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    raw[o.name] = r.body.subarray(at, at + size);
    at += size;
  }
  assert.equal(at, r.body.length, 'the binary outputs fill the rest of the body exactly');
  return { header, raw };
}

const f32 = (v: Float32Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);
const f64 = (v: Float32Array) => Buffer.from(Float64Array.from(v).buffer);
const readF32 = (b: Buffer) => Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i));
const readI64 = (b: Buffer) => Array.from({ length: b.length / 8 }, (_, i) => Number(b.readBigInt64LE(8 * i)));
function readBytes(b: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < b.length; ) {
    const n = b.readUInt32LE(at);
    out.push(b.subarray(at + 4, at + 4 + n).toString('utf8'));
    at += 4 + n;
  }
  return out;
}

describe('Open Inference Protocol over REST, as Triton and KServe clients speak it', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let engine: Engine;
  let infer: string;

  before(async () => {
    tmp = await tempDir();
    const dir = await tinyModel(tmp.dir, 4);
    service = await startTestService(testConfig(dir, { maxBatch: 32 }));
    engine = await directEngine(dir, 32);
    infer = `${service.url}/v2/models/supsup/infer`;
  });
  after(async () => {
    await service?.close();
    engine?.dispose();
    await tmp?.remove();
  });

  it('lists the binary tensor data extension in server metadata', async () => {
    const meta = await http('GET', `${service.url}/v2`);
    assert.deepEqual(meta.body.extensions, ['binary_tensor_data', 'model_configuration', 'statistics', 'model_repository']);
  });

  it('takes binary inputs and answers binary outputs (binary_data_output, the client default), with no content type', async () => {
    const x = randomExamples(3, SIZE, 41);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 3, task: 'random-1' }));
    const { body, headers } = binaryRequest(
      {
        id: 'b1',
        parameters: { binary_data_output: true, task: 'random-1', sequence_id: 0, some_client_flag: 'x' },
        inputs: [{ name: 'x', shape: [3, SIZE], datatype: 'FP32', parameters: { binary_data_size: 3 * SIZE * 4 } }],
      },
      f32(x.flat),
    );
    const r = await post(infer, body, headers);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    const { header, raw } = readBinaryReply(r);
    assert.equal(header.id, 'b1');
    assert.equal(header.model_name, 'supsup');
    assert.equal(header.model_version, '1');
    assert.deepEqual(header.outputs.map((o: any) => o.name), ['probabilities', 'label', 'task', 'task_confidence', 'task_unknown']);
    assert.ok(header.outputs.every((o: any) => o.data === undefined), 'binary outputs carry no JSON data');
    assert.deepEqual(readI64(raw.label), expected.map((p) => p.label));
    assert.deepEqual(readBytes(raw.task), expected.map((p) => p.task.id));
    assert.deepEqual([...raw.task_unknown], expected.map((p) => (p.task.unknown ? 1 : 0)));
    readF32(raw.probabilities).forEach((v, i) => assert.ok(Math.abs(v - expected[Math.floor(i / 10)].probabilities[i % 10]) < 1e-6));
  });

  it('honours requested outputs, each in binary or JSON as asked, in the order asked', async () => {
    const x = randomExamples(2, SIZE, 42);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 2 }));
    const { body, headers } = binaryRequest(
      {
        inputs: [{ name: 'x', shape: [2, SIZE], datatype: 'UINT8', parameters: { binary_data_size: 2 * SIZE } }],
        outputs: [{ name: 'task', parameters: { binary_data: true } }, { name: 'label', parameters: { binary_data: false } }],
      },
      Buffer.from(x.bytes),
    );
    const r = await post(infer, body, { ...headers, 'content-type': 'application/octet-stream' });
    assert.equal(r.status, 200, r.body.toString());
    const { header, raw } = readBinaryReply(r);
    assert.deepEqual(header.outputs.map((o: any) => o.name), ['task', 'label']);
    assert.deepEqual(header.outputs[0].parameters, { binary_data_size: raw.task.length });
    assert.deepEqual(readBytes(raw.task), expected.map((p) => p.task.id));
    assert.deepEqual(header.outputs[1].data, expected.map((p) => p.label));
    assert.equal(header.parameters.task_inferred, true);

    const json = await http('POST', infer, { inputs: [{ name: 'x', shape: [2, SIZE], datatype: 'FP32', data: Array.from(x.flat) }], outputs: [{ name: 'task_confidence' }] });
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type') ?? '', /application\/json/);
    assert.deepEqual(json.body.outputs.map((o: any) => o.name), ['task_confidence']);
  });

  it('refuses unknown outputs and broken binary bodies in the OIP error form', async () => {
    const one = { name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0.5) };
    const unknown = await http('POST', infer, { inputs: [one], outputs: [{ name: 'logits' }] });
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error, /unknown output "logits" \(outputs: probabilities, label, task, task_confidence, task_unknown\)/);
    const bin = (size: number, extra: number, headerLength?: string) => {
      const b = binaryRequest({ inputs: [{ name: 'x', shape: [1, SIZE], datatype: 'FP32', parameters: { binary_data_size: size } }] }, Buffer.alloc(SIZE * 4 + extra));
      return post(infer, b.body, headerLength === undefined ? b.headers : { 'inference-header-content-length': headerLength });
    };
    const cases: [Promise<RawReply>, RegExp][] = [
      [bin(SIZE * 4, 4), /4 bytes after the JSON header belong to no tensor/],
      [bin(SIZE * 4 + 8, 0), /needs 3144 bytes of binary data, but the body has 3136 left/],
      [bin(SIZE * 4 - 4, -4), /holds 3132 bytes, but shape \[1, 784\] of FP32 needs 3136/],
      [bin(SIZE * 4, 0, 'abc'), /Inference-Header-Content-Length must be the JSON header's length/],
      [bin(SIZE * 4, 0, '5'), /the inference request header is not valid JSON/],
      [post(infer, Buffer.alloc(0)), /the body is empty/],
    ];
    for (const [reply, message] of cases) {
      const r = await reply;
      assert.equal(r.status, 400, r.body.toString());
      assert.match(JSON.parse(r.body.toString()).error, message);
    }
  });

  it('inflates a gzip-compressed request (tritonclient request_compression_algorithm), never past the body limit', async () => {
    const x = randomExamples(1, SIZE, 45);
    const { body, headers } = binaryRequest({ inputs: [{ name: 'x', shape: [1, SIZE], datatype: 'UINT8', parameters: { binary_data_size: SIZE } }] }, Buffer.from(x.bytes));
    const ok = await post(infer, gzipSync(body), { ...headers, 'content-encoding': 'gzip' });
    assert.equal(ok.status, 200, ok.body.toString());
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 1 }));
    assert.deepEqual(JSON.parse(ok.body.toString()).outputs.find((o: any) => o.name === 'label').data, [expected[0].label]);
    const bomb = await post(infer, gzipSync(Buffer.alloc(5 * 1024 * 1024)), { 'content-encoding': 'gzip' });
    assert.equal(bomb.status, 413);
    assert.match(JSON.parse(bomb.body.toString()).error, /inflates to more than the server's limit/);
    const br = await post(infer, body, { ...headers, 'content-encoding': 'br' });
    assert.equal(br.status, 400);
    assert.match(JSON.parse(br.body.toString()).error, /Content-Encoding "br" is not accepted/);
  });

  it('ignores unknown parameters, accepts priority, checks the types of those it knows', async () => {
    const input = { name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0.5) };
    const ok = await http('POST', infer, { parameters: { priority: 3, timeout: 5_000_000, temperature: 2, headers: {} }, inputs: [input] });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    for (const [parameters, message] of [
      [{ timeout: -1 }, /parameters.timeout must be a whole number/],
      [{ priority: 'high' }, /parameters.priority must be a whole number/],
      [{ binary_data_output: 'yes' }, /parameters.binary_data_output must be a boolean/],
    ] as const) {
      const r = await http('POST', infer, { parameters, inputs: [input] });
      assert.equal(r.status, 400);
      assert.match(r.body.error, message);
    }
  });

  it('serves versioned routes for version 1; any other version is 404 in the OIP form', async () => {
    const base = `${service.url}/v2/models/supsup/versions`;
    assert.equal((await http('GET', `${base}/1/ready`)).body.ready, true);
    assert.deepEqual((await http('GET', `${base}/1`)).body.versions, ['1']);
    const input = { name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0.5) };
    const r = await http('POST', `${base}/1/infer`, { inputs: [input] });
    assert.equal(r.status, 200);
    assert.equal(r.body.model_version, '1');
    for (const [method, path] of [['GET', `${base}/2/ready`], ['GET', `${base}/2`], ['POST', `${base}/2/infer`]] as const) {
      const bad = await http(method, path, method === 'POST' ? { inputs: [input] } : undefined);
      assert.equal(bad.status, 404, path);
      assert.deepEqual(bad.body, { error: 'unknown version "2" of model "supsup" (versions: 1)' });
    }
    for (const path of ['/v2/models/resnet', '/v2/models/resnet/ready', '/v2/nothing-here', '/v2/models/supsup/config/x']) {
      const bad = await http('GET', `${service.url}${path}`);
      assert.equal(bad.status, 404, path);
      assert.equal(typeof bad.body.error, 'string', `${path}: ${JSON.stringify(bad.body)}`);
    }
  });

  it('takes any shape with 784 values per example and checks the input name and UINT8 range', async () => {
    const x = randomExamples(2, SIZE, 43);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 2, task: 'random-0' }));
    for (const shape of [[2, SIZE], [2, 28, 28], [2, 1, 28, 28]]) {
      for (const [datatype, bytes] of [['FP32', f32(x.flat)], ['FP64', f64(x.flat)], ['UINT8', Buffer.from(x.bytes)]] as const) {
        const { body, headers } = binaryRequest({ parameters: { task: 'random-0' }, inputs: [{ name: 'x', shape, datatype, parameters: { binary_data_size: bytes.length } }] }, bytes);
        const r = await post(infer, body, headers);
        assert.equal(r.status, 200, `${shape} ${datatype}: ${r.body.toString()}`);
        const label = JSON.parse(r.body.toString()).outputs.find((o: any) => o.name === 'label');
        assert.deepEqual(label.data, expected.map((p) => p.label), `${shape} ${datatype}`);
      }
    }
    const cases: [object, RegExp][] = [
      [{ name: 'x', shape: [1, 28, 27], datatype: 'FP32', data: new Array(756).fill(0) }, /each example must have 784 values; shape \[1, 28, 27\] gives 756 per example/],
      [{ name: 'x', shape: [SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0) }, /shape must be \[examples, \.\.\.\]/],
      [{ name: 'input__0', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0) }, /inputs\[0\].name must be "x"/],
      [{ name: 'x', shape: [1, SIZE], datatype: 'UINT8', data: [256, ...new Array(SIZE - 1).fill(0)] }, /value 0 is 256: UINT8 values are whole numbers 0..255/],
      [{ name: 'x', shape: [40, SIZE], datatype: 'UINT8', data: [] }, /batch of 40 examples is over the limit of 32/],
    ];
    for (const [input, message] of cases) {
      const r = await http('POST', infer, { inputs: [input] });
      assert.equal(r.status, 400);
      assert.match(r.body.error, message);
    }
  });

  it('says in the model metadata which datatypes and shapes it takes and how UINT8 is scaled', async () => {
    const meta = (await http('GET', `${service.url}/v2/models/supsup`)).body;
    assert.deepEqual(meta.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, SIZE] }]);
    assert.equal(meta.properties.input_datatypes, 'FP32,FP64,UINT8');
    assert.match(meta.properties.input_scaling, /UINT8 values are pixels 0..255, divided by 255/);
    assert.match(meta.properties.input_shapes, /\[N, 784\], \[N, 28, 28\], \[N, 1, 28, 28\]/);
  });

  it('serves each stored task as a model of its own, as multi-adapter servers do', async () => {
    const x = randomExamples(2, SIZE, 44);
    const expected = engine.classify(engine.validate({ inputs: x.flat, batch: 2, task: 'random-2' }));
    const model = `${service.url}/v2/models/random-2`;
    assert.equal((await http('GET', `${model}/ready`)).body.ready, true);
    const meta = (await http('GET', model)).body;
    assert.equal(meta.name, 'random-2');
    assert.equal(meta.properties.task, 'random-2');
    const { body, headers } = binaryRequest({ inputs: [{ name: 'x', shape: [2, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 2 * SIZE * 4 } }], parameters: { binary_data_output: true } }, f32(x.flat));
    for (const url of [`${model}/infer`, `${model}/versions/1/infer`]) {
      const { header, raw } = readBinaryReply(await post(url, body, headers));
      assert.equal(header.model_name, 'random-2');
      assert.equal(header.parameters.task_inferred, false);
      assert.deepEqual(readBytes(raw.task), ['random-2', 'random-2']);
      assert.deepEqual(readI64(raw.label), expected.map((p) => p.label));
    }
    const conflict = await http('POST', `${model}/infer`, { parameters: { task: 'random-1' }, inputs: [{ name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0) }] });
    assert.equal(conflict.status, 400);
    assert.match(conflict.body.error, /differs from the task of model "random-2"/);
  });

  it('documents every /v2 route with request and response schemas in the OpenAPI document', async () => {
    const doc = (await http('GET', `${service.url}/openapi.json`)).body;
    for (const path of ['/v2/models/{name}/infer', '/v2/models/{name}/versions/{version}/infer']) {
      const op = doc.paths[path].post;
      assert.ok(op.requestBody.content['application/json'].schema.properties.inputs, path);
      assert.ok(op.responses['200'].content['application/json'].schema.properties.outputs, path);
      assert.ok(op.responses['400'].content['application/json'].schema.properties.error, path);
    }
    for (const path of ['/v2', '/v2/models/{name}', '/v2/models/{name}/ready', '/v2/models/{name}/versions/{version}', '/v2/health/ready']) {
      assert.ok(doc.paths[path].get.responses['200'].content['application/json'].schema.properties, path);
    }
  });
});

describe('OIP REST deadlines and model names', () => {
  it('makes parameters.timeout (µs) the deadline of the queued request', async () => {
    const tmp = await tempDir();
    // A request for a given task waits up to 2 s for company to merge with, so a 100 ms timeout expires while it is queued.
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { maxWaitMs: 2000 }));
    try {
      const input = { name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0.5) };
      const late = await http('POST', `${service.url}/v2/models/random-0/infer`, { parameters: { timeout: 100_000 }, inputs: [input] });
      assert.equal(late.status, 504, JSON.stringify(late.body));
      assert.equal(typeof late.body.error, 'string');
      assert.ok(late.ms < 1500, `refused after ${late.ms} ms, not after the 2 s wait`);
      const patient = await http('POST', `${service.url}/v2/models/random-0/infer`, { parameters: { timeout: 10_000_000 }, inputs: [input] });
      assert.equal(patient.status, 200);
    } finally {
      await service.close();
      await tmp.remove();
    }
  });

  it('serves the main model under --model-name', async () => {
    const tmp = await tempDir();
    const service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { modelName: 'mnist-tasks' }));
    try {
      const meta = await http('GET', `${service.url}/v2/models/mnist-tasks`);
      assert.equal(meta.body.name, 'mnist-tasks');
      const input = { name: 'x', shape: [1, SIZE], datatype: 'FP32', data: new Array(SIZE).fill(0.5) };
      const r = await http('POST', `${service.url}/v2/models/mnist-tasks/infer`, { inputs: [input] });
      assert.equal(r.body.model_name, 'mnist-tasks');
      const old = await http('GET', `${service.url}/v2/models/supsup/ready`);
      assert.equal(old.status, 404);
      assert.match(old.body.error, /this server serves "mnist-tasks"/);
    } finally {
      await service.close();
      await tmp.remove();
    }
  });
});
