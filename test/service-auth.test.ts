import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { LOADER_OPTIONS, OIP_PROTO_PATH, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient } from './support/grpc-calls.ts';
import { ADMIN_TOKEN, TINY, type TestService, http, randomExamples, startTestService, tempDir, testConfig, tinyModel } from './support/service-fixture.ts';

/** --api-token: serving calls need it (or the admin token), REST and gRPC alike; health, metrics and docs stay open. */
const API_TOKEN = 'test-api-token-abcdefghijkl';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function call(client: DynamicClient, method: string, request: unknown, token?: string): Promise<{ ok: true; res: any } | { ok: false; code: grpc.status; details: string }> {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    client[method](request, md, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: any) =>
      resolve(err ? { ok: false, code: err.code, details: err.details } : { ok: true, res }),
    );
  });
}

describe('serve --api-token', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let service: TestService;
  let grpcClients: { classifier: DynamicClient; oip: DynamicClient; health: DynamicClient };
  const x = randomExamples(2, TINY.inputSize, 5);

  before(async () => {
    tmp = await tempDir();
    service = await startTestService(testConfig(await tinyModel(tmp.dir, 3), { apiToken: API_TOKEN, adminToken: ADMIN_TOKEN }));
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync([PROTO_PATH, OIP_PROTO_PATH, healthProtoPath], LOADER_OPTIONS)) as any;
    const address = `127.0.0.1:${service.grpcPort}`;
    const creds = grpc.credentials.createInsecure();
    grpcClients = {
      classifier: new pkg.supsup.v1.Classifier(address, creds),
      oip: new pkg.inference.GRPCInferenceService(address, creds),
      health: new pkg.grpc.health.v1.Health(address, creds),
    };
  });
  after(async () => {
    for (const c of Object.values(grpcClients ?? {})) c.close();
    await service?.close();
    await tmp?.remove();
  });

  it('REST: health, metrics, docs and OIP server health stay open', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/v2/health/live', '/v2/health/ready', '/v2']) {
      assert.equal((await http('GET', `${service.url}${path}`)).status, 200, path);
    }
  });

  it('REST: serving routes answer 401 without the token or with a wrong one, and work with the API or admin token', async () => {
    const classify = (headers: Record<string, string> = {}) => http('POST', `${service.url}/classify`, { inputs: x.rows, task: 'random-1' }, headers);
    const none = await classify();
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthenticated');
    assert.match(none.body.error.message, /Authorization: Bearer <API token>/);
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    assert.match((await classify(bearer('wrong-token-0123456789'))).body.error.message, /not the API token/);
    assert.equal((await classify({ authorization: `Basic ${API_TOKEN}` })).status, 401);
    assert.equal((await classify(bearer(API_TOKEN))).status, 200);
    assert.equal((await classify(bearer(ADMIN_TOKEN))).status, 200, 'the admin token works where the API token does');
    for (const path of ['/model', '/tasks', '/tasks/random-0', '/v2/models/supsup', '/v2/models/supsup/ready']) {
      assert.equal((await http('GET', `${service.url}${path}`)).status, 401, path);
      assert.equal((await http('GET', `${service.url}${path}`, undefined, bearer(API_TOKEN))).status, 200, path);
    }
    // OIP routes keep OIP's error shape.
    const oip = await http('POST', `${service.url}/v2/models/supsup/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, TINY.inputSize], data: x.rows[0] }] });
    assert.equal(oip.status, 401);
    assert.match(oip.body.error, /Authorization: Bearer <API token>/);
  });

  it('REST: the API token does not grant task management', async () => {
    const reply = await http('DELETE', `${service.url}/tasks/random-0`, undefined, bearer(API_TOKEN));
    assert.equal(reply.status, 401);
    assert.match(reply.body.error.message, /not the admin token/);
    assert.equal((await http('GET', `${service.url}/tasks`, undefined, bearer(API_TOKEN))).body.tasks.length, 3);
  });

  it('gRPC: Classifier and OIP model calls need the token in the authorization metadata; health and server calls do not', async () => {
    const infer = { inputs: Buffer.from(x.flat.buffer), shape: [2, TINY.inputSize], task: 'random-0' };
    const refused = await call(grpcClients.classifier, 'Infer', infer);
    assert.ok(!refused.ok && refused.code === grpc.status.UNAUTHENTICATED && /API token/.test(refused.details), JSON.stringify(refused));
    const wrong = await call(grpcClients.classifier, 'ListTasks', {}, 'wrong-token-0123456789');
    assert.ok(!wrong.ok && wrong.code === grpc.status.UNAUTHENTICATED && /not the API token/.test(wrong.details), JSON.stringify(wrong));
    const ok = await call(grpcClients.classifier, 'Infer', infer, API_TOKEN);
    assert.ok(ok.ok && ok.res.predictions.length === 2, JSON.stringify(ok));
    const meta = await call(grpcClients.oip, 'ModelMetadata', { name: 'supsup' });
    assert.ok(!meta.ok && meta.code === grpc.status.UNAUTHENTICATED);
    assert.ok((await call(grpcClients.oip, 'ModelMetadata', { name: 'supsup' }, ADMIN_TOKEN)).ok);
    const live = await call(grpcClients.oip, 'ServerLive', {});
    assert.ok(live.ok && live.res.live);
    const health = await call(grpcClients.health, 'Check', { service: '' });
    assert.ok(health.ok && health.res.status === 'SERVING', JSON.stringify(health));
  });
});
