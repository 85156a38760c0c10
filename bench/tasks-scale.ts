/**
 * Thousands of tasks through the real server (issue 9 items 4-5): task writes, cold start, memory under a mixed soak.
 *
 *   node --import tsx bench/tasks-scale.ts [--k 2500] [--model .bench/tasks-k2500] [--starts 5] [--puts 200] [--soak 0]
 *                                          [--soak-paths given,oneShot,each,binary,tasks] [--root DIR] [--out .bench/tasks-scale.json]
 *
 * --root runs another checkout's server (say the one before this change) on the same model, for a before/after.
 *
 * The model: LeNet 300-100, s = 500, k permutation tasks (each manifest entry holds its explicit 784-entry
 * permutation), random masks of density 0.5 drawn one 32-bit word at a time from Xoshiro128(k) as bench/scale.ts
 * draws them; built once into --model in the form a model written before the task log has (manifest.json holding
 * every task, no log), which every version loads. Writes go to a fresh copy of it (--model + "-work").
 * Every request goes through `supsup serve` on 127.0.0.1 with node:http and one keep-alive socket (no fetch).
 *
 * Parts:
 *   cold    spawn `supsup serve` --starts times: milliseconds from spawn to the first 200 of /readyz (median), and RSS then
 *   tasks   PUT /tasks/{id} --puts new permutation tasks (base64 mask), then DELETE each: p50/p90/max; GET /tasks pages
 *   soak    --soak seconds of a mixed loop (given batch 1, inferred one-shot batch 1, per-example decisions batch 16,
 *           binary search batch 1, a PUT and a DELETE), the server's RSS sampled every 5 s: growth and peak against the bank;
 *           --soak-paths keeps only the named parts of the loop, to tell which path the memory grows with. At the end,
 *           the server's resident memory by kind (/proc/PID/smaps: the bank, other anonymous, file-backed) and its
 *           largest anonymous regions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { maskWords, presetArchitecture } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { LOG_FILE_PATTERN, serializeManifest } from '../src/model/manifest.ts';
import { appendTasks, checkpointModel, createModel, hasModel } from '../src/model/model-store.ts';
import { freePort } from '../test/system/harness.ts';
import { randomBankMask } from './random-bank-model.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOKEN = 'bench-admin-token';
const { values: o } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    model: { type: 'string' },
    starts: { type: 'string', default: '5' },
    puts: { type: 'string', default: '200' },
    soak: { type: 'string', default: '0' },
    'soak-paths': { type: 'string', default: 'given,oneShot,each,binary,tasks' },
    root: { type: 'string' },
    out: { type: 'string', default: '.bench/tasks-scale.json' },
  },
});
const k = Number(o.k);
const MODEL = resolve(ROOT, o.model ?? `.bench/tasks-k${k}`);
const WORK = `${MODEL}-work`;
const SERVER_ROOT = resolve(o.root ?? ROOT);
const architecture = presetArchitecture('lenet-300-100', 500);
const words = maskWords(architecture);
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
const simdFlags = flags.filter((f) => /^(avx2|fma|avx512\w*|avx_vnni)$/.test(f)).join(' ');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`cpu flags: ${simdFlags}; load average ${load()}`);


// ----- the model --------------------------------------------------------------------------------------------
if (!hasModel(MODEL)) {
  const t0 = performance.now();
  const rng = new Xoshiro128(k);
  await createModel(MODEL, { architecture, seed: 1, normalization: MNIST_NORMALIZATION });
  for (let i = 0; i < k; i += 250) {
    const items = [];
    for (let t = i; t < Math.min(k, i + 250); t++) {
      items.push({ task: { id: `t${t}`, name: `Permuted task ${t}`, transform: permutedTask(t) }, mask: randomBankMask(architecture, rng) });
    }
    await appendTasks(MODEL, items);
  }
  const { log: _log, ...manifest } = await checkpointModel(MODEL);
  writeFileSync(join(MODEL, 'manifest.json'), serializeManifest(manifest));
  for (const f of readdirSync(MODEL)) if (LOG_FILE_PATTERN.test(f)) rmSync(join(MODEL, f));
  console.log(`built ${MODEL}: k = ${k} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

// ----- raw HTTP on one keep-alive socket ----------------------------------------------------------------------
interface Reply {
  status: number;
  body: Buffer;
  ms: number;
}
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function call(port: number, method: string, path: string, body?: unknown, admin = false): Promise<Reply> {
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {};
  if (data) Object.assign(headers, { 'content-type': 'application/json', 'content-length': data.length });
  if (admin) headers.authorization = `Bearer ${TOKEN}`;
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode!, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(data);
  });
}

async function expect(reply: Promise<Reply>, status: number, what: string): Promise<Reply> {
  const r = await reply;
  if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} (expected ${status}): ${r.body.toString().slice(0, 300)}`);
  return r;
}

// ----- the server ---------------------------------------------------------------------------------------------
interface Server {
  proc: ChildProcess;
  port: number;
  readyMs: number;
}

/** Spawns `supsup serve` and polls /readyz every 10 ms: readyMs = spawn to the first 200. */
async function startServer(model: string): Promise<Server> {
  const [port, grpcPort] = [await freePort(), await freePort()];
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    [join(SERVER_ROOT, 'bin/supsup.js'), 'serve', '--model', model, '--host', '127.0.0.1', '--http-port', String(port), '--grpc-port', String(grpcPort), '--log-level', 'warn'],
    { cwd: SERVER_ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SUPSUP_ADMIN_TOKEN: TOKEN } },
  );
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d));
  const probe = new Agent({ keepAlive: false });
  while (performance.now() - t0 < 120_000) {
    if (proc.exitCode !== null) throw new Error(`the server exited (${proc.exitCode}):\n${err.slice(-3000)}`);
    const ok = await new Promise<boolean>((done) => {
      const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: probe }, (res) => {
        res.resume();
        done(res.statusCode === 200);
      });
      req.on('error', () => done(false));
      req.end();
    });
    if (ok) return { proc, port, readyMs: performance.now() - t0 };
    await new Promise((r) => setTimeout(r, 10));
  }
  proc.kill('SIGKILL');
  throw new Error(`not ready within 120 s:\n${err.slice(-3000)}`);
}

async function stopServer(s: Server): Promise<void> {
  const exited = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill('SIGTERM');
  await exited;
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
/**
 * The process's resident memory by kind, from /proc/PID/smaps: the bank is the one anonymous region of its size
 * (one allocation), the rest of the anonymous memory (heaps, arenas, stacks), and file-backed pages (code).
 */
function residentByKind(pid: number, bankMiB: number) {
  const regions: { sizeMiB: number; rssMiB: number; anonymous: boolean }[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)/.exec(line);
    if (head) regions.push({ sizeMiB: (parseInt(head[2], 16) - parseInt(head[1], 16)) / 2 ** 20, rssMiB: 0, anonymous: head[3] === '0' });
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) regions[regions.length - 1].rssMiB = Number(rss[1]) / 1024;
  }
  const anonymous = regions.filter((r) => r.anonymous).sort((a, b) => b.rssMiB - a.rssMiB);
  const bank = anonymous.find((r) => Math.abs(r.rssMiB - bankMiB) < 1);
  const sum = (rs: { rssMiB: number }[]) => rs.reduce((t, r) => t + r.rssMiB, 0);
  const others = anonymous.filter((r) => r !== bank);
  return { bankMiB: bank?.rssMiB ?? 0, anonMiB: sum(others), fileMiB: sum(regions.filter((r) => !r.anonymous)), largest: others.slice(0, 6) };
}
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x: number) => x.toFixed(2);
const results: Record<string, unknown> = { k, model: MODEL, server: SERVER_ROOT, cpuFlags: simdFlags, loadBefore: load() };

// ----- cold start ---------------------------------------------------------------------------------------------
/** The server's CPU seconds (both threads) and minor page faults so far, from /proc/PID/stat. */
const cpuAndFaults = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { cpuS: (Number(f[11]) + Number(f[12])) / 100, minorFaults: Number(f[7]) };
};
const starts: { readyMs: number; rssMiB: number; cpuS: number; minorFaults: number }[] = [];
for (let i = 0; i < Number(o.starts); i++) {
  const s = await startServer(MODEL);
  starts.push({ readyMs: s.readyMs, rssMiB: rssMiB(s.proc.pid!), ...cpuAndFaults(s.proc.pid!) });
  await stopServer(s);
}
if (starts.length) {
  const ms = starts.map((s) => s.readyMs);
  console.log(`cold start to ready, k = ${k}: median ${ms.length ? median(ms).toFixed(0) : '-'} ms (${ms.map((x) => x.toFixed(0)).join(', ')}); RSS when ready ${starts.map((s) => s.rssMiB.toFixed(0)).join(', ')} MiB`);
  console.log(`  CPU to ready ${starts.map((s) => s.cpuS.toFixed(2)).join(', ')} s; minor page faults ${starts.map((s) => s.minorFaults).join(', ')}`);
  results.coldStart = { medianMs: median(ms), runs: starts };
}

// ----- task writes and listing --------------------------------------------------------------------------------
rmSync(WORK, { recursive: true, force: true });
cpSync(MODEL, WORK, { recursive: true });
const server = await startServer(WORK);
const model = JSON.parse((await expect(call(server.port, 'GET', '/model'), 200, 'GET /model')).body.toString()) as { maskBankBytes?: number };
const bankMiB = (model.maskBankBytes ?? (k * words * 4)) / 2 ** 20;
console.log(`server ready in ${server.readyMs.toFixed(0)} ms; bank ${bankMiB.toFixed(1)} MiB; RSS ${rssMiB(server.proc.pid!).toFixed(0)} MiB`);
const rng = new Xoshiro128(0x7a5c);
let extra = 0;
const newTask = () => {
  const i = k + extra++;
  const mask = randomBankMask(architecture, rng);
  return { id: `n${i}`, body: { name: `Permuted task ${i}`, transform: permutedTask(i), mask: Buffer.from(mask.buffer).toString('base64') } };
};
const puts: number[] = [], deletes: number[] = [];
const added: string[] = [];
for (let i = 0; i < Number(o.puts); i++) {
  const t = newTask();
  puts.push((await expect(call(server.port, 'PUT', `/tasks/${t.id}`, t.body, true), 201, 'PUT')).ms);
  added.push(t.id);
}
for (const id of added) deletes.push((await expect(call(server.port, 'DELETE', `/tasks/${id}`, undefined, true), 204, 'DELETE')).ms);
const pages: number[] = [];
const full: number[] = [];
for (let i = 0; i < 5; i++) {
  full.push((await expect(call(server.port, 'GET', '/tasks'), 200, 'GET /tasks')).ms);
  pages.push((await expect(call(server.port, 'GET', '/tasks?limit=100&view=basic'), 200, 'GET /tasks page')).ms);
}
if (puts.length) {
  console.log(`PUT /tasks at k = ${k}: p50 ${fmt(quantile(puts, 0.5))} ms, p90 ${fmt(quantile(puts, 0.9))} ms, max ${fmt(Math.max(...puts))} ms (${puts.length})`);
  console.log(`DELETE /tasks/{id}:    p50 ${fmt(quantile(deletes, 0.5))} ms, p90 ${fmt(quantile(deletes, 0.9))} ms, max ${fmt(Math.max(...deletes))} ms`);
}
console.log(`GET /tasks (all, with transforms) median ${fmt(median(full))} ms; GET /tasks?limit=100&view=basic median ${fmt(median(pages))} ms`);
results.tasks = {
  put: { p50: quantile(puts, 0.5), p90: quantile(puts, 0.9), max: Math.max(...puts), n: puts.length },
  delete: { p50: quantile(deletes, 0.5), p90: quantile(deletes, 0.9), max: Math.max(...deletes) },
  listAllMs: median(full),
  listPageBasicMs: median(pages),
};

// ----- soak ---------------------------------------------------------------------------------------------------
const soakS = Number(o.soak);
if (soakS > 0) {
  const input = (batch: number) => ({
    inputsBase64: Buffer.from(Array.from({ length: batch * 784 }, () => rng.nextInt(256))).toString('base64'),
    dtype: 'uint8',
    shape: [batch, 784],
  });
  const bodies = {
    given: () => ({ ...input(1), task: `t${rng.nextInt(k)}` }),
    oneShot: () => input(1),
    each: () => ({ ...input(16), inference: { decideFrom: 'each' } }),
    binary: () => ({ ...input(1), inference: { method: 'binary' } }),
  };
  // One round of the loop: 8 given, 2 one-shot, 1 per-example, 1 binary search, then a PUT and a DELETE ("tasks").
  const round = [...Array<'given'>(8).fill('given'), 'oneShot', 'oneShot', 'each', 'binary'] as const;
  const paths = new Set(o['soak-paths'].split(','));
  for (const p of paths) if (!(p in bodies) && p !== 'tasks') throw new Error(`--soak-paths: unknown path ${p}`);
  const counts: Record<string, number> = { given: 0, oneShot: 0, each: 0, binary: 0, put: 0, delete: 0 };
  const samples: { s: number; rssMiB: number }[] = [];
  const t0 = performance.now();
  const sample = () => samples.push({ s: (performance.now() - t0) / 1000, rssMiB: rssMiB(server.proc.pid!) });
  sample();
  const timer = setInterval(sample, 5000);
  while (performance.now() - t0 < soakS * 1000) {
    for (const kind of round) {
      if (!paths.has(kind)) continue;
      await expect(call(server.port, 'POST', '/classify', bodies[kind]()), 200, kind);
      counts[kind]++;
    }
    if (!paths.has('tasks')) continue;
    const t = newTask();
    await expect(call(server.port, 'PUT', `/tasks/${t.id}`, t.body, true), 201, 'PUT');
    counts.put++;
    await expect(call(server.port, 'DELETE', `/tasks/${t.id}`, undefined, true), 204, 'DELETE');
    counts.delete++;
  }
  clearInterval(timer);
  sample();
  const rss = samples.map((x) => x.rssMiB);
  const first = samples.find((x) => x.s >= 30) ?? samples[0]; // after the first half minute: allocator and JIT warm
  const growth = rss[rss.length - 1] - first.rssMiB;
  console.log(
    `soak ${soakS} s: ${JSON.stringify(counts)}; RSS start ${fmt(rss[0])} MiB, at ${first.s.toFixed(0)} s ${fmt(first.rssMiB)}, ` +
      `end ${fmt(rss[rss.length - 1])}, peak ${fmt(Math.max(...rss))} MiB; growth ${fmt(growth)} MiB; peak − bank ${fmt(Math.max(...rss) - bankMiB)} MiB`,
  );
  const memory = residentByKind(server.proc.pid!, bankMiB);
  console.log(
    `  resident at the end: bank ${fmt(memory.bankMiB)}, other anonymous ${fmt(memory.anonMiB)}, file-backed ${fmt(memory.fileMiB)} MiB; ` +
      `largest anonymous regions ${memory.largest.map((r) => `${fmt(r.rssMiB)}/${fmt(r.sizeMiB)}`).join(', ')} MiB (resident/size)`,
  );
  results.soak = { seconds: soakS, paths: [...paths], counts, samples, growthMiB: growth, peakMiB: Math.max(...rss), bankMiB, memory };
}
await stopServer(server);
agent.destroy();
results.loadAfter = load();
mkdirSync(dirname(resolve(ROOT, o.out!)), { recursive: true });
writeFileSync(resolve(ROOT, o.out!), JSON.stringify(results, null, 2));
console.log(`load average ${load()}; wrote ${o.out}`);
