/**
 * How long an invalid Open Inference Protocol ModelInfer blocks the server's main thread before it is refused:
 * an 8 MiB UINT8 raw_input_contents whose shape does not match its size (issue 11). The server runs in this
 * process (models/example-lenet), so the event-loop delay seen while each call is answered is the block.
 *
 *   node --import tsx bench/oip-refusal.ts [--calls 10] [--mib 8]
 *
 * Prints the median and the largest block (ms) over the calls, and the median round trip.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseServeConfig } from '../src/service/config.ts';
import { LOADER_OPTIONS, OIP_PROTO_PATH } from '../src/service/grpc/server.ts';
import { startService } from '../src/service/server.ts';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '10' }, mib: { type: 'string', default: '8' } } });
const calls = Number(values.calls);
const bytes = Number(values.mib) * 1024 * 1024 - 4096; // under the 8 MiB message limit with the envelope

const config = parseServeConfig(
  ['--model', 'models/example-lenet', '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--body-limit', '9mib'],
  {},
);
const service = await startService(config);
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any;
const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${service.grpcPort}`, grpc.credentials.createInsecure(), {
  'grpc.max_send_message_length': 16 * 1024 * 1024,
});
const request = { model_name: 'supsup', inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 784] }], raw_input_contents: [Buffer.alloc(bytes, 7)] };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const blocks: number[] = [];
const trips: number[] = [];
let refused = '';
for (let i = 0; i < calls; i++) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const t0 = performance.now();
  h.enable();
  const err = await new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(request, (e: grpc.ServiceError | null) => resolve(e)));
  h.disable();
  trips.push(performance.now() - t0);
  blocks.push(h.max / 1e6);
  refused = err ? `${grpc.status[err.code]}: ${err.details}` : 'ACCEPTED (should have been refused)';
}
client.close();
await service.stop(5_000);
console.log(`oip-refusal: ${calls} calls of ${(bytes / 1024 / 1024).toFixed(2)} MiB UINT8 raw, shape [1, 784]; answer: ${refused}`);
console.log(`main-thread block: median ${median(blocks).toFixed(1)} ms, max ${Math.max(...blocks).toFixed(1)} ms; round trip median ${median(trips).toFixed(1)} ms; load ${loadavg()[0].toFixed(2)}`);
