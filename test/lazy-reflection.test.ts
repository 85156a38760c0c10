/**
 * gRPC server reflection with its index built on the first call (service/grpc/lazy-reflection.ts) answers every
 * request, on both reflection versions, exactly as @grpc/reflection's ReflectionService added the usual way.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { LOADER_OPTIONS, OIP_PROTO_PATH, PROTO_PATH } from '../src/service/grpc/server.ts';
import { addLazyReflection } from '../src/service/grpc/lazy-reflection.ts';

const proto = (version: string) => createRequire(import.meta.url).resolve(`@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`);
const VERSIONS = ['v1', 'v1alpha'];
const REQUESTS = [
  { list_services: '' },
  { file_containing_symbol: 'supsup.v1.Classifier' },
  { file_containing_symbol: 'inference.GRPCInferenceService' },
  { file_by_filename: 'health.proto' },
  { file_containing_symbol: 'no.such.Symbol' },
];

async function serve(add: (server: grpc.Server, pkg: protoLoader.PackageDefinition) => void): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  add(server, protoLoader.loadSync([PROTO_PATH, OIP_PROTO_PATH, healthProtoPath], LOADER_OPTIONS));
  const port = await new Promise<number>((ok, fail) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))),
  );
  return { server, port };
}

/** The replies to REQUESTS, one stream per version. */
async function ask(port: number): Promise<unknown[]> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(VERSIONS.map(proto), LOADER_OPTIONS)) as any;
  const replies: unknown[] = [];
  for (const version of VERSIONS) {
    const client = new pkg.grpc.reflection[version].ServerReflection(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const stream = client.ServerReflectionInfo();
    const got = new Promise<unknown[]>((ok, fail) => {
      const out: unknown[] = [];
      stream.on('data', (r: unknown) => out.push(r) === REQUESTS.length && ok(out));
      stream.on('error', fail);
    });
    for (const r of REQUESTS) stream.write(r);
    replies.push(...(await got));
    stream.end();
    client.close();
  }
  return replies;
}

describe('lazy gRPC reflection', () => {
  const servers: grpc.Server[] = [];
  let eager: number;
  let lazy: number;

  before(async () => {
    const e = await serve((server, pkg) => new ReflectionService(pkg).addToServer(server));
    const l = await serve(addLazyReflection);
    servers.push(e.server, l.server);
    [eager, lazy] = [e.port, l.port];
  });
  after(() => servers.forEach((s) => s.forceShutdown()));

  it('answers as ReflectionService, on v1 and v1alpha', async () => {
    const expected = await ask(eager);
    assert.equal(expected.length, 2 * REQUESTS.length);
    assert.ok(JSON.stringify(expected).includes('supsup.v1.Classifier'));
    assert.deepEqual(await ask(lazy), expected);
    assert.deepEqual(await ask(lazy), expected, 'and again, from the index built by the first call');
  });
});
