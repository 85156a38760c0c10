/**
 * Server CPU time per inferred request through REST, for trees served side by side: one `supsup serve` per tree
 * (its own src/ or lib/ and addon) on the same k-task model, requests sent one at a time in alternating rounds,
 * and the CPU the server process spent on them (user + system of all its threads, /proc/PID/stat). Where other
 * jobs hold the cores, wall-clock latency measures the scheduler; CPU per request still measures the work.
 *
 *   node --import tsx bench/rest-cpu.ts [--k 2500] [--requests 40] [--rounds 3] [--trees .,/tmp/main-tree]
 *
 * Cases: one-shot and binary search from one MNIST test digit (as bench/rest-scale.ts sends them).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { presetArchitecture } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { median } from './peer-client.ts';
import { writeRandomBankModel } from './random-bank-model.ts';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    requests: { type: 'string', default: '40' },
    rounds: { type: 'string', default: '3' },
    trees: { type: 'string', default: '.' },
  },
});
const k = Number(values.k), requests = Number(values.requests), rounds = Number(values.rounds);
const trees = values.trees!.split(',').map((t) => resolve(t));
const dir = mkdtempSync(join(tmpdir(), 'supsup-rest-cpu-'));
await writeRandomBankModel(dir, presetArchitecture('lenet-300-100', 500), k, new Xoshiro128(k));

const ticks = 100; // USER_HZ
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
};
const servers: { tree: string; process: ChildProcess; base: string }[] = [];
process.on('exit', () => {
  for (const s of servers) s.process.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});
for (const [i, tree] of trees.entries()) {
  const port = 18700 + i;
  const child = spawn(process.execPath, [join(tree, 'bin/supsup.js'), 'serve', '--model', dir, '--host', '127.0.0.1', '--http-port', String(port), '--grpc-port', String(port + 100), '--log-level', 'warn'], {
    cwd: tree,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, SUPSUP_ADMIN_TOKEN: '' },
  });
  const base = `http://127.0.0.1:${port}`;
  while (!(await fetch(`${base}/readyz`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null) throw new Error(`${tree}: the server exited`);
    await new Promise((r) => setTimeout(r, 200));
  }
  servers.push({ tree, process: child, base });
}

const digits = loadMnistData().test, rng = new Xoshiro128(1);
const body = (method: string) => {
  const x = digits.images.slice(rng.nextInt(digits.count) * 784).subarray(0, 784);
  return JSON.stringify({ inputsBase64: Buffer.from(Float32Array.from(x).buffer).toString('base64'), dtype: 'float32', shape: [1, 784], inference: { method } });
};
const cpu: Record<string, number[]> = {};
console.log(`k = ${k}; ${requests} requests a case, tree and round; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let round = 0; round < rounds; round++) {
  for (const s of round % 2 ? [...servers].reverse() : servers) {
    for (const method of ['one-shot', 'binary']) {
      const bodies = Array.from({ length: requests }, () => body(method));
      await fetch(`${s.base}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[0] });
      const before = cpuMs(s.process.pid!);
      for (const b of bodies) {
        const r = await fetch(`${s.base}/classify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b });
        if (!r.ok) throw new Error(`${s.tree} ${method}: ${r.status} ${await r.text()}`);
      }
      (cpu[`${s.tree} ${method}`] ??= []).push((cpuMs(s.process.pid!) - before) / requests);
    }
  }
}
for (const s of servers) {
  const oneShot = median(cpu[`${s.tree} one-shot`])!, binary = median(cpu[`${s.tree} binary`])!;
  console.log(`${s.tree}: server CPU per request (median of ${rounds} rounds): one-shot ${oneShot.toFixed(2)} ms, binary ${binary.toFixed(2)} ms, binary ÷ one-shot ${(binary / oneShot).toFixed(2)}`);
}
if (servers.length > 1) {
  const [a, b] = servers.map((s) => median(cpu[`${s.tree} binary`])!);
  console.log(`binary: ${servers[0].tree} ÷ ${servers[1].tree} = ${(a / b).toFixed(3)}`);
}
console.log(`load after ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
process.exit(0);
