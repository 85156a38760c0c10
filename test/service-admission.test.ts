import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, OIP_PROTO_PATH, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, rejectsWith, unary } from './support/grpc-calls.ts';
import { TINY, http, randomExamples, startTestService, tempDir, testConfig, tinyModel, type TestService } from './support/service-fixture.ts';

/**
 * Cheap refusal under overload: with the queue full, a classification request is refused before its body is read
 * (REST: onRequest) or its message decoded (gRPC: an interceptor on the metadata), so a refusal never pays for
 * parsing, and a request whose body is still on its way holds its place in the queue until it is answered.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `head` (request line and headers, no body) on a fresh connection; resolves with the raw answer, or null if none came within `ms`. */
async function headersOnly(port: number, head: string, ms = 3000): Promise<{ answer: string | null; socket: Socket }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let answer = '';
  socket.on('data', (d) => (answer += d));
  socket.write(head);
  const deadline = Date.now() + ms;
  while (!answer.includes('\r\n\r\n') && Date.now() < deadline) await sleep(20);
  return { answer: answer.includes('\r\n\r\n') ? answer : null, socket };
}

/** The server's ends of the connections `service` accepted (their bytesRead says how much of a body the server read). */
function acceptedSockets(service: TestService): Set<Socket> {
  const accepted = new Set<Socket>();
  service.app.server.on('connection', (s: Socket) => accepted.add(s));
  return accepted;
}

/** The server's end of `client`'s connection. */
function serverEnd(accepted: Set<Socket>, client: Socket): Socket {
  const end = [...accepted].find((s) => s.remotePort === client.localPort);
  assert.ok(end, 'the server accepted the connection');
  return end;
}

/** Sends a head declaring `declared` bytes and then `bodyBytes` of them; `answer(ms)` waits up to `ms` for the answer's head (null if none came). */
async function sendBody(port: number, declared: number, bodyBytes: number) {
  const { socket } = await headersOnly(port, classifyHead(declared), 0);
  let received = '';
  socket.on('data', (d) => (received += d));
  socket.write(Buffer.alloc(bodyBytes, 0x20));
  const answer = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (!received.includes('\r\n\r\n') && Date.now() < deadline) await sleep(20);
    return received.includes('\r\n\r\n') ? received : null;
  };
  return { socket, answer };
}

/** Far less than the bodies sent (megabytes): what Node reads ahead before backpressure stops the socket. */
const READ_AHEAD = 512 * 1024;

const classifyHead = (bytes: number) => `POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${bytes}\r\n\r\n`;

describe('admission before the body is read', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  const x = randomExamples(1, TINY.inputSize, 90);
  before(async () => {
    tmp = await tempDir();
    // One place in the queue; a given-task request waits up to 1.5 s there for company, holding it.
    service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { maxQueue: 1, maxWaitMs: 1500 }));
  });
  after(async () => {
    await service?.close();
    await tmp?.remove();
  });

  /** Fills the one place with a request that waits for company; resolves once it is queued, with its answer to come. */
  async function fillQueue(): Promise<{ waiting: Promise<{ status: number }> }> {
    const waiting = http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-0' });
    while (service.ctx.runtime.queueDepth === 0) await sleep(10);
    return { waiting };
  }

  it('REST: refuses with 503 + Retry-After on the headers alone, without waiting for the body; bad JSON is refused, not parsed', async () => {
    const { waiting } = await fillQueue();
    const { answer, socket } = await headersOnly(service.httpPort, classifyHead(100_000));
    socket.destroy();
    assert.ok(answer, 'answered before the body was sent');
    assert.match(answer, /^HTTP\/1\.1 503 /);
    assert.match(answer, /\r\nretry-after: 1\r\n/i);
    assert.match(answer, /"code":"resource_exhausted"/);
    assert.match(answer, /\r\nconnection: close\r\n/i, 'the unread body is not drained: the connection closes');
    const bad = await http('POST', `${service.url}/classify`, '{"inputs": [[not json');
    assert.equal(bad.status, 503, 'refused before parsing, so not a 400');
    const oip = await http('POST', `${service.url}/v2/models/supsup/infer`, '{"inputs": [');
    assert.equal(oip.status, 503);
    assert.match(oip.body.error, /busy/);
    assert.equal((await http('GET', `${service.url}/healthz`)).status, 200);
    assert.equal((await waiting).status, 200, 'the queued request is served');
    const next = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' });
    assert.equal(next.status, 200, 'admitted again once the place is free');
  });

  it('REST: a refused request\'s body is never read, though its client keeps sending it', async () => {
    const accepted = acceptedSockets(service);
    const { waiting } = await fillQueue();
    const refused = await sendBody(service.httpPort, 4_000_000, 3_000_000);
    assert.match((await refused.answer(3000)) ?? '', /^HTTP\/1\.1 503 /);
    await sleep(300); // time enough to read megabytes, had the server drained the body
    const read = serverEnd(accepted, refused.socket).bytesRead;
    refused.socket.destroy();
    assert.ok(read < READ_AHEAD, `the server read ${read} bytes of a refused request`);
    assert.equal((await waiting).status, 200);
  });

  it('REST: a request whose body is still arriving holds its place, and gives it back when its client goes away', async () => {
    const slow = await headersOnly(service.httpPort, classifyHead(100_000), 300);
    assert.equal(slow.answer, null, 'admitted: waiting for its body');
    const refused = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' });
    assert.equal(refused.status, 503, 'the place is held while the body is read');
    slow.socket.destroy();
    await sleep(100);
    const served = await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' });
    assert.equal(served.status, 200, 'the place came back when the client left');
  });

  it('gRPC: refuses Infer and ModelInfer with RESOURCE_EXHAUSTED before decoding or checking the message', async () => {
    const classifier = new (grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any).supsup.v1.Classifier(
      `127.0.0.1:${service.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as DynamicClient;
    const oip = new (grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any).inference.GRPCInferenceService(
      `127.0.0.1:${service.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as DynamicClient;
    try {
      const { waiting } = await fillQueue();
      // Both messages are invalid (wrong shape): with a free place they would be INVALID_ARGUMENT.
      const badInfer = { inputs: Buffer.alloc(10), shape: [3, 784], dtype: 'uint8' };
      const badModelInfer = { model_name: 'supsup', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] };
      await rejectsWith(unary(classifier, 'Infer', badInfer), grpc.status.RESOURCE_EXHAUSTED, /busy/);
      await rejectsWith(unary(oip, 'ModelInfer', badModelInfer), grpc.status.RESOURCE_EXHAUSTED, /busy/);
      const trailer = await new Promise<grpc.Metadata>((resolve) => classifier.Infer(badInfer, (err: grpc.ServiceError) => resolve(err.metadata)));
      assert.deepEqual(trailer.get('retry-after'), ['1']);
      assert.deepEqual(trailer.get('supsup-error-code'), ['resource_exhausted']);
      assert.equal((await waiting).status, 200);
      await rejectsWith(unary(classifier, 'Infer', badInfer), grpc.status.INVALID_ARGUMENT, /./);
      const served = await unary(classifier, 'Infer', { inputs: Buffer.from(x.bytes), shape: [1, TINY.inputSize], dtype: 'uint8', task: 'random-0' });
      assert.equal(served.predictions.length, 1, 'admitted again once the place is free');
      const metrics = (await http('GET', `${service.url}/metrics`)).body as string;
      assert.match(metrics, /supsup_requests_total\{protocol="grpc",route="\/supsup\.v1\.Classifier\/Infer",outcome="resource_exhausted"\} [1-9]/);
    } finally {
      classifier.close();
      oip.close();
    }
  });
});

describe('waiting for a place (--admission-wait-ms)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let accepted: Set<Socket>;
  const x = randomExamples(1, TINY.inputSize, 91);
  before(async () => {
    tmp = await tempDir();
    // One place; a given-task request waits 300 ms for company, holding it; a request that finds it taken waits up to 1.2 s.
    service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { maxQueue: 1, maxWaitMs: 300, admissionWaitMs: 1200 }));
    accepted = acceptedSockets(service);
  });
  after(async () => {
    await service?.close();
    await tmp?.remove();
  });

  it('REST: a request that finds the queue full waits unread, and is served once a pass takes the queued one', async () => {
    const first = http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-0' });
    while (service.ctx.runtime.queueDepth === 0) await sleep(5);
    const second = http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' });
    while (service.ctx.runtime.admissionWaiting === 0) await sleep(5);
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200, 'admitted when the pass took the first');
    assert.equal(service.ctx.runtime.admissionWaiting, 0);
  });

  it('REST: while it waits its body is not read; when no place comes in time it is refused (503 + Retry-After), and only then is the body drained, keeping the connection', async () => {
    const holder = await headersOnly(service.httpPort, classifyHead(100_000), 200); // admitted, its body never comes
    assert.equal(holder.answer, null);
    const t0 = Date.now();
    const parked = await sendBody(service.httpPort, 3_000_000, 3_000_000);
    assert.equal(await parked.answer(500), null, 'still waiting for a place');
    assert.equal(service.ctx.runtime.admissionWaiting, 1);
    const end = serverEnd(accepted, parked.socket);
    assert.ok(end.bytesRead < READ_AHEAD, `the server read ${end.bytesRead} bytes of a waiting request`);
    const answer = await parked.answer(3000);
    const waited = Date.now() - t0;
    assert.match(answer ?? '', /^HTTP\/1\.1 503 /);
    assert.match(answer!, /\r\nretry-after: 1\r\n/i);
    assert.doesNotMatch(answer!, /\r\nconnection: close\r\n/i, 'the client, still sending its body, is not cut off');
    assert.ok(waited >= 1100, `refused after the wait (${waited} ms)`);
    while (end.bytesRead < 3_000_000 && Date.now() - t0 < 5000) await sleep(20);
    assert.ok(end.bytesRead >= 3_000_000, 'the refused body was read to its end, so the connection can carry the next request');
    holder.socket.destroy();
    parked.socket.destroy();
  });

  it('REST: a waiting request whose client goes away gives up its turn', async () => {
    const holder = await headersOnly(service.httpPort, classifyHead(100_000), 200);
    const parked = await headersOnly(service.httpPort, classifyHead(100_000), 200);
    assert.equal(service.ctx.runtime.admissionWaiting, 1);
    parked.socket.destroy();
    while (service.ctx.runtime.admissionWaiting > 0) await sleep(10);
    holder.socket.destroy();
    await sleep(100);
    assert.equal((await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' })).status, 200, 'no place is lost');
  });

  it('gRPC: a call that finds the queue full waits for a place and is served when one frees, or refused RESOURCE_EXHAUSTED after the wait', async () => {
    const oip = new (grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any).inference.GRPCInferenceService(
      `127.0.0.1:${service.grpcPort}`,
      grpc.credentials.createInsecure(),
    ) as DynamicClient;
    const request = { model_name: 'random-0', inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, TINY.inputSize] }], raw_input_contents: [Buffer.from(x.bytes)] };
    try {
      let holder = await headersOnly(service.httpPort, classifyHead(100_000), 200);
      const served = unary(oip, 'ModelInfer', request);
      while (service.ctx.runtime.admissionWaiting === 0) await sleep(10);
      holder.socket.destroy();
      assert.equal((await served).model_name, 'random-0', 'admitted once the place came back');
      holder = await headersOnly(service.httpPort, classifyHead(100_000), 200);
      const t0 = Date.now();
      await rejectsWith(unary(oip, 'ModelInfer', request), grpc.status.RESOURCE_EXHAUSTED, /busy/);
      assert.ok(Date.now() - t0 >= 1100, 'refused after the wait');
      holder.socket.destroy();
    } finally {
      oip.close();
    }
  });
});
