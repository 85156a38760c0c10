/**
 * The given-task cases of bench/rest-scale.ts alone, against the server of any checkout, for before/after runs of
 * the given-task path: a k-task LeNet 300-100 s = 500 model of random masks (cached in /tmp/given-model-k<k>),
 * `supsup serve` from --root, wrk with one connection on given-b1 and given-b128 bodies (float32 base64, a random
 * task each), optionally the PyTorch peer (bench/pytorch_peer.py) right after each case.
 *
 *   node --import tsx bench/given-rest.ts [--k 2500] [--duration 4] [--root .] [--peer] [--prof DIR]
 *
 * --prof DIR: the server runs with --cpu-prof into DIR (every thread). Needs Debian `wrk`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { presetArchitecture } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { median, startPeer } from './peer-client.ts';
import { writeRandomBankModel } from './random-bank-model.ts';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    duration: { type: 'string', default: '4' },
    root: { type: 'string', default: '.' },
    peer: { type: 'boolean', default: false },
    prof: { type: 'string' },
  },
});
const k = Number(values.k);
const architecture = presetArchitecture('lenet-300-100', 500);
const rng = new Xoshiro128(k);
const dir = join(tmpdir(), `given-model-k${k}`);
if (!existsSync(join(dir, 'manifest.json'))) await writeRandomBankModel(dir, architecture, k, rng);

const port = 18000 + (process.pid % 1000) * 2;
const profile = values.prof ? ['--cpu-prof', '--cpu-prof-dir', values.prof] : [];
const server: ChildProcess = spawn(
  process.execPath,
  [...profile, join(values.root!, 'bin/supsup.js'), 'serve', '--model', dir, '--host', '127.0.0.1', '--http-port', String(port), '--grpc-port', String(port + 1), '--log-level', 'warn'],
  { cwd: values.root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, SUPSUP_ADMIN_TOKEN: '' } },
);
const base = `http://127.0.0.1:${port}`;
for (const started = performance.now(); ; ) {
  if (server.exitCode !== null) throw new Error(`the server exited (${server.exitCode}) before it was ready`);
  if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
  if (performance.now() - started > 180_000) throw new Error('the server was not ready within 180 s');
  await new Promise((r) => setTimeout(r, 200));
}

function body(batch: number): string {
  const x = new Float32Array(batch * 784);
  for (let i = 0; i < x.length; i++) x[i] = rng.nextFloat();
  return JSON.stringify({ inputsBase64: Buffer.from(x.buffer).toString('base64'), dtype: 'float32', shape: [batch, 784], task: `t${rng.nextInt(k)}` });
}
const scripts = mkdtempSync(join(tmpdir(), 'given-wrk-'));
function wrk(name: string, payloads: string[], seconds: number): { p50: number; p99: number; requests: number; errors: number } {
  const script = join(scripts, `${name}.lua`);
  writeFileSync(script, [
    'local bodies = {', ...payloads.map((b) => `[==[${b}]==],`), '}', 'local i = 0', 'wrk.method = "POST"',
    'wrk.headers["Content-Type"] = "application/json"',
    'request = function() i = i % #bodies + 1; return wrk.format(nil, "/classify", nil, bodies[i]) end',
    'done = function(s, latency, r)',
    '  local e = s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout + s.errors.status',
    '  io.write(string.format("RESULT %d %d %d %d\\n", latency:percentile(50), latency:percentile(99), s.requests, e))',
    'end',
  ].join('\n'));
  const text = execFileSync('wrk', ['-t1', '-c1', `-d${seconds}s`, '--timeout', '30s', '-s', script, `${base}/classify`], { encoding: 'utf8' });
  const m = /RESULT (\d+) (\d+) (\d+) (\d+)/.exec(text);
  if (!m) throw new Error(`wrk printed no result:\n${text}`);
  const [p50, p99, requests, errors] = m.slice(1).map(Number);
  return { p50: p50 / 1000, p99: p99 / 1000, requests, errors };
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`k = ${k}, server from ${values.root}; load average ${load()}`);
const peer = values.peer ? await startPeer(k, '2') : null;
const cases = [
  { name: 'given-b1', bodies: Array.from({ length: 256 }, () => body(1)), peerRuns: 400 },
  { name: 'given-b128', bodies: Array.from({ length: 16 }, () => body(128)), peerRuns: 60 },
];
for (const c of cases) {
  wrk(`${c.name}-warm`, c.bodies, 1);
  const r = wrk(c.name, c.bodies, Number(values.duration));
  if (r.errors > 0) throw new Error(`${c.name}: ${r.errors} requests failed`);
  let vs = '';
  if (peer) {
    await peer.run(c.name, 2);
    const ms = median(await peer.run(c.name, c.peerRuns))!;
    vs = `   PyTorch ${ms.toFixed(3)} ms (PyTorch / ours ${(ms / r.p50).toFixed(2)})`;
  }
  console.log(`${c.name.padEnd(11)} p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  ${r.requests} requests${vs}`);
}
peer?.close();
console.log(`load average after: ${load()}`);
rmSync(scripts, { recursive: true, force: true });
server.kill('SIGINT');
await new Promise((r) => server.once('exit', r));
process.exit(0);
