/**
 * Every request path through the real server (`supsup serve`, REST on 127.0.0.1) at k tasks, measured with
 * wrk (one connection unless said), beside the PyTorch peer (bench/pytorch_peer.py, in process, 2 threads)
 * run in the same minutes, case after case, in --rounds rounds (medians over rounds; ratios within rounds). One k per run (each a few minutes at most); results merge into
 * one JSON file by k, and --plot draws latency against k from it.
 *
 *   node --import tsx bench/rest-scale.ts --k 2500 [--duration 5] [--rounds 3] [--peer-max-k 2500] [--cases oneshot-b1,binary-b1] [--out .bench/rest-scale.json]
 *   node --import tsx bench/rest-scale.ts --plot [--out .bench/rest-scale.json] [--svg docs/results/scale-latency.svg]
 *
 * Model: LeNet 300-100, s = 500, k random masks of density 0.5 (random words, as bench/scale.ts), written to a
 * temporary model directory. Bodies, float32 base64: given-task cases random inputs in [0, 1), each naming a
 * random task (256 bodies cycled); inferred-task cases MNIST test digits (pixels in [0, 1], which the server
 * normalises as it serves them: the background pixel becomes −0.4242, which the one-example scores split off,
 * src/core/background-split.ts), and oneshot-b1-random the random inputs for comparison (no background). Cases:
 *   given-b1, given-b128   given task, batch 1 / 128                       (peer: W ⊙ M[t] per call, matmuls)
 *   oneshot-b1             task inferred from 1 example, one-shot H       (peer: autograd + k×P matrix-vector)
 *   oneshot-b1-random      the same from random inputs                    (the same peer figure: its cost ignores x)
 *   each-b16               per-example decisions, mixed batch of 16
 *   binary-b1              binary search from 1 example
 *   inferred-b1-c8         one-shot batch 1 from 8 connections at once (throughput against oneshot-b1's)
 * The peer needs k float masks in memory (k · P · 4 bytes: 12.6 GB at k = 10,000), so it runs only up to
 * --peer-max-k. Needs Debian `wrk`, and python3-torch + libopenblas0-pthread for the peer.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { presetArchitecture, weightCount } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { median, startPeer } from './peer-client.ts';
import { writeRandomBankModel } from './random-bank-model.ts';
import { renderScalePlot, scaleTable, type ScaleRuns } from './scale-plot.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PIXELS = 784;

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    duration: { type: 'string', default: '5' },
    /** Rounds over all cases (each case runs --duration seconds a round). */
    rounds: { type: 'string', default: '3' },
    'peer-max-k': { type: 'string', default: '2500' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string', default: '.bench/rest-scale.json' },
    plot: { type: 'boolean', default: false },
    svg: { type: 'string', default: 'docs/results/scale-latency.svg' },
    /** Only these cases (comma-separated names), for a short run. */
    cases: { type: 'string' },
  },
});
const out = values.out!;
const previous: ScaleRuns = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};

if (values.plot) {
  mkdirSync(dirname(values.svg!), { recursive: true });
  writeFileSync(values.svg!, renderScalePlot(previous));
  console.log(scaleTable(previous));
  console.log(`wrote ${values.svg}`);
  process.exit(0);
}

const k = Number(values.k), duration = Number(values.duration);
const architecture = presetArchitecture('lenet-300-100', 500);
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
const simdFlags = flags.filter((f) => /^(avx2|fma|avx512\w*|avx_vnni)$/.test(f)).join(' ');
const addon = loadNativeAddon().addon;
const simd = addon ? `scores ${addon.cpuPath()}, newer kernels ${addon.simdLevel()}` : 'no native addon';
console.log(`k = ${k}; cpu flags: ${simdFlags}; ${simd}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

// ----- the model and the server ------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'supsup-rest-scale-'));
const rng = new Xoshiro128(k);
await writeRandomBankModel(dir, architecture, k, rng);

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
const httpPort = await freePort(), grpcPort = await freePort();
const base = `http://127.0.0.1:${httpPort}`;
const server: ChildProcess = spawn(
  process.execPath,
  [join(ROOT, 'bin/supsup.js'), 'serve', '--model', dir, '--host', '127.0.0.1', '--http-port', String(httpPort), '--grpc-port', String(grpcPort), '--log-level', 'warn'],
  { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, SUPSUP_ADMIN_TOKEN: '' } },
);
const cleanup = () => {
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
};
process.on('exit', cleanup);
const started = performance.now();
for (;;) {
  if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}) before it was ready`);
  if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
  if (performance.now() - started > 180_000) throw new Error('the server was not ready within 180 s');
  await new Promise((r) => setTimeout(r, 200));
}
console.log(`server ready after ${((performance.now() - started) / 1000).toFixed(1)} s`);

// ----- bodies and wrk ----------------------------------------------------------------------------------------
const digits = loadMnistData().test;
type Inputs = 'random' | 'digits';
function body(batch: number, extra: Record<string, unknown>, inputs: Inputs): string {
  const x = new Float32Array(batch * PIXELS);
  if (inputs === 'digits') {
    for (let e = 0; e < batch; e++) x.set(digits.images.subarray(rng.nextInt(digits.count) * PIXELS).subarray(0, PIXELS), e * PIXELS);
  } else {
    for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat();
  }
  return JSON.stringify({ inputsBase64: Buffer.from(x.buffer).toString('base64'), dtype: 'float32', shape: [batch, PIXELS], ...extra });
}
const bodies = (n: number, batch: number, extra: () => Record<string, unknown>, inputs: Inputs = 'digits') =>
  Array.from({ length: n }, () => body(batch, extra(), inputs));
const randomTask = () => ({ task: `t${rng.nextInt(k)}` });
const oneShotPeer = { case: 'oneshot-b1', runs: k > 1000 ? 8 : 20 };
const allCases: { name: string; connections: number; bodies: string[]; peer?: { case: string; runs: number } }[] = [
  { name: 'given-b1', connections: 1, bodies: bodies(256, 1, randomTask, 'random'), peer: { case: 'given-b1', runs: 400 } },
  { name: 'given-b128', connections: 1, bodies: bodies(16, 128, randomTask, 'random'), peer: { case: 'given-b128', runs: 60 } },
  { name: 'oneshot-b1', connections: 1, bodies: bodies(64, 1, () => ({})), peer: oneShotPeer },
  { name: 'oneshot-b1-random', connections: 1, bodies: bodies(64, 1, () => ({}), 'random'), peer: oneShotPeer },
  { name: 'each-b16', connections: 1, bodies: bodies(16, 16, () => ({ inference: { decideFrom: 'each' } })) },
  { name: 'binary-b1', connections: 1, bodies: bodies(64, 1, () => ({ inference: { method: 'binary' } })) },
  { name: 'inferred-b1-c8', connections: 8, bodies: bodies(64, 1, () => ({})) },
];
const only = values.cases?.split(',');
const unknownCases = only?.filter((n) => !allCases.some((c) => c.name === n)) ?? [];
if (unknownCases.length > 0) throw new Error(`no case ${unknownCases.join(', ')} (cases: ${allCases.map((c) => c.name).join(', ')})`);
const cases = only ? allCases.filter((c) => only.includes(c.name)) : allCases;

interface WrkResult {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  requests: number;
  errors: number;
  rps: number;
  connections: number;
}

const scriptDir = mkdtempSync(join(tmpdir(), 'supsup-wrk-'));
function wrk(name: string, payloads: string[], connections: number, seconds: number): WrkResult {
  const script = join(scriptDir, `${name}.lua`);
  const lua = [
    'local bodies = {',
    ...payloads.map((b) => `[==[${b}]==],`),
    '}',
    'local i = 0',
    'wrk.method = "POST"',
    'wrk.headers["Content-Type"] = "application/json"',
    'request = function() i = i % #bodies + 1; return wrk.format(nil, "/classify", nil, bodies[i]) end',
    'done = function(s, latency, r)',
    '  local e = s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout + s.errors.status',
    '  io.write(string.format("RESULT %d %d %d %d %d %d\\n", latency:percentile(50), latency:percentile(90), latency:percentile(99), s.requests, e, s.duration))',
    'end',
  ].join('\n');
  writeFileSync(script, lua);
  const text = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '30s', '-s', script, `${base}/classify`], { encoding: 'utf8' });
  const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(text);
  if (!m) throw new Error(`wrk printed no result:\n${text}`);
  const [p50, p90, p99, requests, errors, us] = m.slice(1).map(Number);
  return { p50Ms: p50 / 1000, p90Ms: p90 / 1000, p99Ms: p99 / 1000, requests, errors, rps: requests / (us / 1e6), connections };
}

const peerMaxK = Number(values['peer-max-k']);
const peer = k <= peerMaxK ? await startPeer(k, values.threads!) : null;
if (peer) console.log(`peer: PyTorch ${peer.info.torch}, ${peer.info.threads} threads, k = ${peer.info.k} float masks`);
else console.log(`peer: not run at k = ${k} (> --peer-max-k ${peerMaxK}: its float masks would take ${((k * weightCount(architecture) * 4) / 2 ** 30).toFixed(1)} GiB)`);

// Rounds: every case in turn, then again, so machine noise (the same case varies up to 1.7x minutes apart here) hits
// all cases alike; each figure is the median over rounds, and each ratio the median of the rounds' own ratios.
const rounds = Number(values.rounds);
/** The median of values there always are (a round's peer runs, every round's figures). */
const middle = (xs: number[]) => median(xs)!;
const perRound: Record<string, WrkResult[]> = {};
const peerRounds: Record<string, number[]> = {};
for (const c of cases) wrk(`${c.name}-warm`, c.bodies, c.connections, 1);
for (let round = 0; round < rounds; round++) {
  for (const c of cases) {
    const r = wrk(c.name, c.bodies, c.connections, duration);
    if (r.errors > 0) throw new Error(`${c.name}: ${r.errors} requests failed`);
    (perRound[c.name] ??= []).push(r);
    if (peer && c.peer) {
      if (round === 0) await peer.run(c.peer.case, 2);
      (peerRounds[c.name] ??= []).push(middle(await peer.run(c.peer.case, c.peer.runs)));
    }
  }
}
const medianOf = (rs: WrkResult[], key: keyof WrkResult) => middle(rs.map((r) => r[key]));
const ours: Record<string, WrkResult> = {};
const peerMs: Record<string, number | null> = {};
/** The median over rounds of a ratio taken within each round. */
const roundRatio = (f: (round: number) => number) => middle(Array.from({ length: rounds }, (_, i) => f(i)));
for (const c of cases) {
  const rs = perRound[c.name];
  ours[c.name] = {
    p50Ms: medianOf(rs, 'p50Ms'),
    p90Ms: medianOf(rs, 'p90Ms'),
    p99Ms: medianOf(rs, 'p99Ms'),
    requests: rs.reduce((n, r) => n + r.requests, 0),
    errors: 0,
    rps: medianOf(rs, 'rps'),
    connections: c.connections,
  };
  peerMs[c.name] = median(peerRounds[c.name]);
  const p = peerMs[c.name];
  const r = ours[c.name];
  const vsPeer = p ? roundRatio((i) => peerRounds[c.name][i] / rs[i].p50Ms) : null;
  console.log(
    `${c.name.padEnd(15)} c=${c.connections} p50 ${r.p50Ms.toFixed(3)} ms (rounds ${rs.map((x) => x.p50Ms.toFixed(3)).join(', ')})  p99 ${r.p99Ms.toFixed(3)} ms  ${r.rps.toFixed(1)} req/s` +
      (p ? `   PyTorch ${p.toFixed(3)} ms (PyTorch / ours ${vsPeer!.toFixed(2)}; rounds ${peerRounds[c.name].map((x) => x.toFixed(3)).join(', ')})` : ''),
  );
}
peer?.close();
rmSync(scriptDir, { recursive: true, force: true });

const within = (a: string, b: string, key: 'p50Ms' | 'rps') =>
  perRound[a] && perRound[b] ? roundRatio((i) => perRound[a][i][key] / perRound[b][i][key]) : NaN;
const derived = {
  eachB16OverOneShot: within('each-b16', 'oneshot-b1', 'p50Ms'),
  binaryOverOneShot: within('binary-b1', 'oneshot-b1', 'p50Ms'),
  c8ThroughputOverOne: within('inferred-b1-c8', 'oneshot-b1', 'rps'),
  peerOverOneShot: peerRounds['oneshot-b1'] ? roundRatio((i) => peerRounds['oneshot-b1'][i] / perRound['oneshot-b1'][i].p50Ms) : NaN,
};
console.log(
  `each-b16 / oneshot-b1 = ${derived.eachB16OverOneShot.toFixed(2)} (target ≤ 5); binary-b1 / oneshot-b1 = ${derived.binaryOverOneShot.toFixed(2)} (target ≤ 3); ` +
    `8 clients / 1 client throughput = ${derived.c8ThroughputOverOne.toFixed(2)} (target ≥ 3)`,
);
if (peerMs['oneshot-b1']) console.log(`PyTorch / ours, one-shot from 1 digit: ${derived.peerOverOneShot.toFixed(1)} (target ≥ 40)`);
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
previous[String(k)] = { date: new Date().toISOString(), cpuFlags: simdFlags, simd, load: loadavg()[0], rounds, ours, peerMs, derived, perRound, peerRounds };
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(previous, null, 2) + '\n');
console.log(`wrote ${out}`);
process.exit(0); // the server child keeps the event loop alive; the exit handler stops it
