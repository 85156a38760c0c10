import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient } from './support/grpc-calls.ts';
import { TINY, type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** --otel-endpoint: spans exported over OTLP/HTTP (JSON) to a receiver that records what it is sent. */
interface OtlpSpan {
  name: string;
  traceId: string;
  parentSpanId?: string;
  kind: number;
  status?: { code?: number };
  attributes: { key: string; value: Record<string, unknown> }[];
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;
const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : (v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.boolValue));
};

describe('serve --otel-endpoint', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let receiver: Server;
  const bodies: any[] = [];
  const paths: string[] = [];
  let service: TestService;
  let classifier: DynamicClient;

  before(async () => {
    receiver = createServer((req, res) => {
      let data = '';
      req.on('data', (d) => (data += d));
      req.on('end', () => {
        paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
        bodies.push(JSON.parse(data));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as { port: number }).port;
    tmp = await tempDir();
    service = await startTestService(testConfig(await tinyModel(tmp.dir, 2), { otelEndpoint: `http://127.0.0.1:${port}/v1/traces` }));
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    classifier = new pkg.supsup.v1.Classifier(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    classifier?.close();
    await service?.close();
    receiver?.close();
    await tmp?.remove();
  });

  it('exports one server span per REST request and gRPC call, joined to the caller’s traceparent', async () => {
    const x = randomExamples(2, TINY.inputSize, 8);
    assert.equal((await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' }, { traceparent: TRACEPARENT })).status, 200);
    assert.equal((await http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'nope' })).status, 404);
    const md = new grpc.Metadata();
    md.set('traceparent', TRACEPARENT);
    await new Promise<void>((resolve, reject) =>
      classifier.Infer({ inputs: Buffer.from(x.flat.buffer), shape: [2, TINY.inputSize] }, md, (err: Error | null) => (err ? reject(err) : resolve())),
    );
    await service.close(); // flushes the exporter
    service = undefined as unknown as TestService;

    assert.ok(paths.length > 0 && paths.every((p) => /^POST \/v1\/traces application\/json/.test(p)), paths.join('; '));
    const resources = bodies.flatMap((b) => b.resourceSpans);
    const serviceName = resources[0].resource.attributes.find((a: { key: string }) => a.key === 'service.name').value.stringValue;
    assert.equal(serviceName, 'supsup');
    const spans: OtlpSpan[] = resources.flatMap((r) => r.scopeSpans.flatMap((s: { spans: OtlpSpan[] }) => s.spans));
    const rest = spans.filter((s) => s.name === 'POST /classify');
    assert.equal(rest.length, 2, spans.map((s) => s.name).join(', '));
    const joined = rest.find((s) => s.traceId === TRACE_ID)!;
    assert.ok(joined, 'the REST span continues the caller’s trace');
    assert.equal(joined.parentSpanId, PARENT_ID);
    assert.equal(joined.kind, 2, 'SERVER');
    assert.equal(attr(joined, 'http.response.status_code'), 200);
    assert.equal(attr(joined, 'http.route'), '/classify');
    const fresh = rest.find((s) => s.traceId !== TRACE_ID)!;
    assert.equal(attr(fresh, 'http.response.status_code'), 404);
    assert.notEqual(fresh.status?.code, 2, 'a caller’s 404 does not mark the server span failed');
    const rpc = spans.find((s) => s.name === '/supsup.v1.Classifier/Infer')!;
    assert.ok(rpc, spans.map((s) => s.name).join(', '));
    assert.equal(rpc.traceId, TRACE_ID);
    assert.equal(rpc.parentSpanId, PARENT_ID);
    assert.equal(attr(rpc, 'rpc.system'), 'grpc');
    assert.equal(attr(rpc, 'supsup.outcome'), 'ok');
  });
});
