/**
 * How long an invalid Open Inference Protocol ModelInfer blocks the server's main thread before it is refused:
 * an 8 MiB UINT8 raw_input_contents whose shape does not match its size (issue 11). The server runs in this
 * process (models/example-lenet) and the client in a worker thread, so the event-loop delay seen on the main
 * thread while each call is answered is the server's block alone.
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
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseServeConfig } from '../src/service/config.ts';
import { LOADER_OPTIONS, OIP_PROTO_PATH } from '../src/service/grpc/server.ts';
import { startService } from '../src/service/server.ts';

const { values } = parseArgs({ args: isMainThread ? process.argv.slice(2) : [], options: { calls: { type: 'string', default: '10' }, mib: { type: 'string', default: '8' } } });
const calls = Number(values.calls);
const bytes = Number(values.mib) * 1024 * 1024 - 4096; // under the 8 MiB message limit with the envelope

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (!isMainThread) {
  // The client: one invalid call each time the main thread asks, answering with the status it got.
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(OIP_PROTO_PATH, LOADER_OPTIONS)) as any;
  const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${workerData.port}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 16 * 1024 * 1024,
  });
  const request = { model_name: 'supsup', inputs: [{ name: 'x', datatype: 'UINT8', shape: [1, 784] }], raw_input_contents: [Buffer.alloc(workerData.bytes, 7)] };
  parentPort!.on('message', (m: string) => {
    if (m === 'close') return void client.close();
    client.ModelInfer(request, (e: grpc.ServiceError | null) => parentPort!.postMessage(e ? `${grpc.status[e.code]}: ${e.details}` : 'ACCEPTED (should have been refused)'));
  });
} else {
  const config = parseServeConfig(
    ['--model', 'models/example-lenet', '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--body-limit', '9mib'],
    {},
  );
  const service = await startService(config);
  const worker = new Worker(new URL('../src/runtime/worker-boot.mjs', import.meta.url), { workerData: { entry: import.meta.url, port: service.grpcPort, bytes } });
  const ask = () => new Promise<string>((resolve) => worker.once('message', resolve).postMessage('call'));
  await ask(); // warm up both sides
  const blocks: number[] = [];
  const trips: number[] = [];
  let refused = '';
  for (let i = 0; i < calls; i++) {
    const h = monitorEventLoopDelay({ resolution: 1 });
    const t0 = performance.now();
    h.enable();
    refused = await ask();
    h.disable();
    trips.push(performance.now() - t0);
    blocks.push(h.max / 1e6);
  }
  worker.postMessage('close');
  await worker.terminate();
  await service.stop(5_000);
  console.log(`oip-refusal: ${calls} calls of ${(bytes / 1024 / 1024).toFixed(2)} MiB UINT8 raw, shape [1, 784]; answer: ${refused}`);
  console.log(`main-thread block: median ${median(blocks).toFixed(1)} ms, max ${Math.max(...blocks).toFixed(1)} ms; round trip median ${median(trips).toFixed(1)} ms; load ${loadavg()[0].toFixed(2)}`);
}
