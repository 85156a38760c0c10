/**
 * Overload benchmark of `supsup serve`: does a short queue cost throughput, and does health stay fast?
 *
 *   node --import tsx bench/overload.ts [--duration 15] [--connections 64] [--rounds 2] [--queues 256,8] [--model DIR] [--out .bench/overload.json]
 *
 * For each --max-queue setting (alternating, --rounds times, a fresh server on free 127.0.0.1 ports each time,
 * --log-level warn): --connections clients (autocannon, in a worker thread of its own) send inferred-task
 * batch-128 requests (MNIST test digits, uint8 base64, as fast as answers come back, ignoring Retry-After)
 * for --duration seconds, while this thread probes GET /healthz every 10 ms and GET /metrics every 30 ms over
 * keep-alive connections of their own. Per run: requests served (200), refused (503), anything else,
 * /healthz and /metrics p50/p99/max. Summary: median served per setting, the ratio of the shortest queue's
 * median to the longest's (target ≥ 0.9), and the worst /healthz and /metrics p99 over all runs (target < 50 ms).
 * Writes JSON, prints a table; exits 1 when a target is missed or a request got an answer other than 200 or 503.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { loadDataset } from '../src/data/datasets.ts';
import { freePort } from '../test/system/harness.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PIXELS = 784;
const BATCH = 128;
const BODIES = 8;
const HEALTH_TARGET_MS = 50;
const SERVED_TARGET = 0.9;

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '15' },
    connections: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '2' },
    queues: { type: 'string', default: '256,8' },
    model: { type: 'string' },
    out: { type: 'string', default: '.bench/overload.json' },
  },
});
const DURATION_S = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const QUEUES = args.queues!.split(',').map(Number);
if (!(DURATION_S > 0 && DURATION_S <= 60)) throw new Error('--duration must be in (0, 60] seconds');
if (!(Number.isInteger(CONNECTIONS) && CONNECTIONS >= 1 && CONNECTIONS <= 256)) throw new Error('--connections must be 1..256');
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1 && ROUNDS <= 5)) throw new Error('--rounds must be 1..5');
if (QUEUES.length < 2 || !QUEUES.every((q) => Number.isInteger(q) && q >= 1)) throw new Error('--queues must list two or more whole numbers');
const MODEL = args.model ?? ['models/permuted-mnist-lenet', 'models/example-lenet'].find((d) => existsSync(join(ROOT, d, 'manifest.json')))!;

// --- the server --------------------------------------------------------------------------------------
async function startServer(maxQueue: number): Promise<{ proc: ChildProcess; url: string }> {
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const flags = ['--model', MODEL, '--host', '127.0.0.1', '--http-port', String(httpPort), '--grpc-port', String(grpcPort), '--log-level', 'warn', '--max-queue', String(maxQueue)];
  const proc = spawn(process.execPath, [join(ROOT, 'bin/supsup.js'), 'serve', ...flags], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}) before it was ready`);
    if ((await get(url, '/readyz').catch(() => ({ status: 0 }))).status === 200) return { proc, url };
    await sleep(250);
  }
  proc.kill('SIGKILL');
  throw new Error('the server was not ready within 120 s');
}

async function stopServer(proc: ChildProcess): Promise<void> {
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

// --- probes (this thread) ----------------------------------------------------------------------------
const probeAgent = new Agent({ keepAlive: true, maxSockets: 2 });

function get(url: string, path: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    const req = request(`${url}${path}`, { agent: probeAgent, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => ok({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', fail);
    req.end();
  });
}

async function probe(url: string, untilMs: number): Promise<{ health: number[]; metrics: number[]; failures: number }> {
  const health: number[] = [];
  const metrics: number[] = [];
  let failures = 0;
  for (let i = 0; performance.now() < untilMs; i++) {
    const h = await get(url, '/healthz');
    if (h.status === 200) health.push(h.ms);
    else failures++;
    if (i % 3 === 2) {
      const m = await get(url, '/metrics');
      if (m.status === 200) metrics.push(m.ms);
      else failures++;
    }
    await sleep(10);
  }
  return { health, metrics, failures };
}

// --- the flood (a worker thread, so its event loop never delays the probes) --------------------------
const FLOOD = `
const { workerData, parentPort } = require('node:worker_threads');
const autocannon = require(workerData.autocannon);
autocannon({
  url: workerData.url, connections: workerData.connections, duration: workerData.duration, timeout: 60,
  requests: workerData.bodies.map((body) => ({ method: 'POST', path: '/classify', headers: { 'content-type': 'application/json' }, body })),
}).then((r) => parentPort.postMessage({
  codes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([c, s]) => [c, s.count])),
  errors: r.errors, timeouts: r.timeouts, duration: r.duration,
}), (e) => parentPort.postMessage({ error: String(e) }));
`;

interface FloodResult {
  codes: Record<string, number>;
  errors: number;
  timeouts: number;
  duration: number;
  error?: string;
}

function flood(url: string, bodies: string[]): Promise<FloodResult> {
  const autocannon = createRequire(import.meta.url).resolve('autocannon');
  const worker = new Worker(FLOOD, { eval: true, workerData: { autocannon, url, connections: CONNECTIONS, duration: DURATION_S, bodies } });
  return new Promise((ok, fail) => {
    worker.once('message', (r: FloodResult) => (r.error ? fail(new Error(r.error)) : ok(r)));
    worker.once('error', fail);
  });
}

// --- the run -----------------------------------------------------------------------------------------
interface Run {
  maxQueue: number;
  round: number;
  served: number;
  refused: number;
  other: Record<string, number>;
  servedPerS: number;
  healthz: Percentiles;
  metrics: Percentiles;
  probeFailures: number;
  /** CPU time of the server process (all threads) over the flood: seconds, and % of one core. */
  serverCpuSeconds: number;
  serverCpuPercent: number;
}
interface Percentiles {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

async function runOnce(maxQueue: number, round: number, bodies: string[]): Promise<Run> {
  const server = await startServer(maxQueue);
  try {
    // One request first, so the first pass's one-time costs are not in the figures.
    const warm = await fetch(`${server.url}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[0] });
    if (warm.status !== 200) throw new Error(`warm-up request: ${warm.status} ${await warm.text()}`);
    const cpuBefore = await serverCpuSeconds(server.url);
    const started = performance.now();
    const [f, p] = await Promise.all([flood(server.url, bodies), probe(server.url, started + DURATION_S * 1000)]);
    const cpu = (await serverCpuSeconds(server.url)) - cpuBefore;
    const serverCpuPercent = Math.round((100 * cpu) / ((performance.now() - started) / 1000));
    const { 200: served = 0, 503: refused = 0, ...rest } = f.codes;
    const other: Record<string, number> = Object.fromEntries(Object.entries(rest).map(([c, n]) => [`HTTP ${c}`, n]));
    if (f.errors) other['connection errors'] = f.errors;
    if (f.timeouts) other.timeouts = f.timeouts;
    return { maxQueue, round, served, refused, other, servedPerS: round1(served / f.duration), healthz: percentiles(p.health), metrics: percentiles(p.metrics), probeFailures: p.failures, serverCpuSeconds: Number(cpu.toFixed(3)), serverCpuPercent };
  } finally {
    await stopServer(server.proc);
  }
}

async function serverCpuSeconds(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)![1]);
}

function percentiles(values: number[]): Percentiles {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => round1(s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN);
  return { samples: s.length, p50: at(0.5), p99: at(0.99), max: round1(s[s.length - 1] ?? NaN) };
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const loadAtStart = loadavg().map(round1);
  const { test } = loadDataset('mnist');
  const bodies = Array.from({ length: BODIES }, (_, b) => {
    const bytes = new Uint8Array(BATCH * PIXELS);
    for (let i = 0; i < BATCH; i++) {
      const digit = ((b * BATCH + i) * 97) % test.count;
      for (let p = 0; p < PIXELS; p++) bytes[i * PIXELS + p] = Math.round(test.images[digit * PIXELS + p] * 255);
    }
    return JSON.stringify({ inputsBase64: Buffer.from(bytes).toString('base64'), dtype: 'uint8', shape: [BATCH, PIXELS] });
  });
  console.log(`model ${MODEL}; ${CONNECTIONS} clients × inferred batch ${BATCH} (${bodies[0].length} B bodies) for ${DURATION_S} s; --max-queue ${QUEUES.join(' / ')}, ${ROUNDS} rounds; load ${loadAtStart.join(' ')}`);

  const runs: Run[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const q of round % 2 ? QUEUES : [...QUEUES].reverse()) {
      const r = await runOnce(q, round, bodies);
      runs.push(r);
      const other = Object.entries(r.other).map(([k, n]) => `, ${k}: ${n}`).join('');
      console.log(
        `  round ${round} --max-queue ${String(q).padStart(3)}: served ${r.served} (${r.servedPerS}/s), refused ${r.refused}${other}; ` +
          `/healthz p50 ${r.healthz.p50} p99 ${r.healthz.p99} max ${r.healthz.max} ms (${r.healthz.samples}); /metrics p99 ${r.metrics.p99} ms; server CPU ${r.serverCpuPercent}%`,
      );
    }
  }

  const bySetting = QUEUES.map((q) => {
    const mine = runs.filter((r) => r.maxQueue === q);
    return { maxQueue: q, medianServed: median(mine.map((r) => r.served)), medianRefused: median(mine.map((r) => r.refused)) };
  });
  const shortest = bySetting.reduce((a, b) => (b.maxQueue < a.maxQueue ? b : a));
  const longest = bySetting.reduce((a, b) => (b.maxQueue > a.maxQueue ? b : a));
  const servedRatio = Math.round((shortest.medianServed / longest.medianServed) * 1000) / 1000;
  // Server CPU per answer, from the runs without refusals (served only) and then those with them: what a refusal costs.
  const perServed = median(runs.filter((r) => r.refused === 0 && r.served > 0).map((r) => r.serverCpuSeconds / r.served));
  const perRefused = median(runs.filter((r) => r.refused > 0).map((r) => (r.serverCpuSeconds - r.served * perServed) / r.refused));
  const cpuPerAnswerMs = { served: Number((perServed * 1000).toFixed(1)), refused: Number((perRefused * 1000).toFixed(2)) };
  const worstHealthP99 = Math.max(...runs.map((r) => r.healthz.p99));
  const worstMetricsP99 = Math.max(...runs.map((r) => r.metrics.p99));
  const unexpected = runs.reduce((n, r) => n + Object.values(r.other).reduce((a, b) => a + b, 0) + r.probeFailures, 0);
  const report = {
    generatedAt: new Date().toISOString(),
    command: `node --import tsx bench/overload.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadavg().map(round1), cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
    setup: { model: MODEL, connections: CONNECTIONS, durationS: DURATION_S, rounds: ROUNDS, batch: BATCH, task: 'inferred', encoding: 'uint8 base64', bodyBytes: bodies[0].length },
    bySetting,
    servedRatio,
    serverCpuPerAnswerMs: cpuPerAnswerMs,
    worstHealthP99Ms: worstHealthP99,
    worstMetricsP99Ms: worstMetricsP99,
    targets: { servedRatio: `≥ ${SERVED_TARGET}`, healthP99Ms: `< ${HEALTH_TARGET_MS}` },
    runs,
  };
  const out = resolve(ROOT, args.out!);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`server CPU per answer: served ${cpuPerAnswerMs.served} ms, refused ${cpuPerAnswerMs.refused} ms`);
  for (const s of bySetting) console.log(`--max-queue ${s.maxQueue}: median served ${s.medianServed}, median refused ${s.medianRefused}`);
  console.log(
    `served ratio (--max-queue ${shortest.maxQueue} / ${longest.maxQueue}): ${servedRatio} (target ≥ ${SERVED_TARGET}); worst /healthz p99 ${worstHealthP99} ms, /metrics p99 ${worstMetricsP99} ms (target < ${HEALTH_TARGET_MS}); load ${report.machine.loadAverageAtEnd.join(' ')}; wrote ${out}`,
  );
  const missed = servedRatio < SERVED_TARGET || worstHealthP99 >= HEALTH_TARGET_MS || worstMetricsP99 >= HEALTH_TARGET_MS || unexpected > 0;
  return missed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
