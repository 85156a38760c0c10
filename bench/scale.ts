/**
 * Thousands of tasks, ours beside PyTorch: the engine in process (native kernels) and bench/pytorch_peer.py
 * (eager PyTorch, same model, same k) run in one command, case by case, alternating rounds so machine noise
 * hits both alike; medians and ratios.
 *
 *   node --import tsx bench/scale.ts [--k 2500] [--rounds 5] [--runs 20] [--threads 2] [--no-peer] [--out .bench/scale.json]
 *
 * Cases (LeNet 300-100, s = 500, k random masks of density 0.5, a random task or input each call):
 *   given-b1, given-b128   given task, batch 1 / 128                          (peer: W ⊙ M[t] per call, matmuls)
 *   oneshot-b1             task inferred from 1 example, one-shot H          (peer: autograd + k×P matrix-vector)
 *   each-b16               per-example decisions for a mixed batch of 16     (ours only; target ≤ 5× oneshot-b1)
 *   binary-b1              binary search from 1 example                      (ours only; target ≤ 3× oneshot-b1)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { maskWords, presetArchitecture, weightCount } from '../src/core/architecture.ts';
import { Engine } from '../src/core/engine.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { selectKernels } from '../src/platform/kernels.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { median, startPeer } from './peer-client.ts';

const CASES = ['given-b1', 'given-b128', 'oneshot-b1', 'each-b16', 'binary-b1'] as const;
type CaseName = (typeof CASES)[number];
const PEER_CASES: CaseName[] = ['given-b1', 'given-b128', 'oneshot-b1'];

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    rounds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '20' },
    threads: { type: 'string', default: '2' },
    'no-peer': { type: 'boolean', default: false },
    out: { type: 'string', default: '.bench/scale.json' },
  },
});
const k = Number(values.k), rounds = Number(values.rounds), runs = Number(values.runs);

const backend = await selectBackend('auto');
const { kernels, reason } = selectKernels('auto');
const addon = loadNativeAddon().addon;
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
const simdFlags = flags.filter((f) => /^(avx2|fma|avx512\w*|avx_vnni)$/.test(f)).join(' ');
console.log(`backend ${backend.name}; kernels ${kernels.name} (${reason}); simd level ${addon?.simdLevel() ?? '-'}`);
console.log(`cpu flags: ${simdFlags}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

// ----- ours ---------------------------------------------------------------------------------------------------
const architecture = presetArchitecture('lenet-300-100', 500);
const rng = new Xoshiro128(k);
const engine = new Engine({ architecture, seed: 1, normalization: { mean: 0.1307, std: 0.3081 }, kernels, expectedTasks: k });
const words = maskWords(architecture), pad = words * 32 - weightCount(architecture);
for (let t = 0; t < k; t++) {
  const mask = new Uint32Array(words);
  for (let j = 0; j < words; j++) mask[j] = rng.nextUint32();
  if (pad > 0) mask[words - 1] &= 0xffffffff >>> pad;
  engine.addTask(`t${t}`, mask);
}
/** 8 prepared input sets per batch size, taken in turn: drawing 100k floats costs more than a batch-128 call. */
const pools = new Map<number, Float32Array[]>();
let turn = 0;
const inputs = (batch: number) => {
  if (!pools.has(batch)) pools.set(batch, Array.from({ length: 8 }, () => Float32Array.from({ length: batch * architecture.inputSize }, () => rng.nextFloat())));
  return pools.get(batch)![turn++ % 8];
};
for (const batch of [1, 16, 128]) inputs(batch);
const randomTask = () => `t${rng.nextInt(k)}`;
const ours: Record<CaseName, () => unknown> = {
  'given-b1': () => engine.classify(engine.validate({ inputs: inputs(1), batch: 1, task: randomTask() })),
  'given-b128': () => engine.classify(engine.validate({ inputs: inputs(128), batch: 128, task: randomTask() })),
  'oneshot-b1': () => engine.classify(engine.validate({ inputs: inputs(1), batch: 1 })),
  'each-b16': () => engine.classify(engine.validate({ inputs: inputs(16), batch: 16, inference: { decideFrom: 'each' } })),
  'binary-b1': () => engine.classify(engine.validate({ inputs: inputs(1), batch: 1, inference: { method: 'binary' } })),
};
/** Times the validate + classify call (a prepared input set and a random task id are picked inside it, < 1 µs). */
function timeOurs(name: CaseName, n: number): number[] {
  const ms: number[] = [];
  for (let r = 0; r < n; r++) {
    const t0 = performance.now();
    ours[name]();
    ms.push(performance.now() - t0);
  }
  return ms;
}

// ----- the peer (bench/peer-client.ts) -------------------------------------------------------------------------
const peer = values['no-peer'] ? null : await startPeer(k, values.threads!);
if (peer) console.log(`peer: PyTorch ${peer.info.torch}, ${peer.info.threads} threads, k = ${peer.info.k} float masks`);

// warm-up, then alternating rounds: every case, ours then the peer's
for (const name of CASES) timeOurs(name, 2);
if (peer) for (const name of PEER_CASES) await peer.run(name, 2);
const samples = { ours: {} as Record<string, number[]>, peer: {} as Record<string, number[]> };
for (let round = 0; round < rounds; round++) {
  for (const name of CASES) {
    const n = name === 'given-b1' ? runs * 5 : runs;
    (samples.ours[name] ??= []).push(...timeOurs(name, n));
    if (peer && PEER_CASES.includes(name)) (samples.peer[name] ??= []).push(...(await peer.run(name, name === 'oneshot-b1' ? Math.max(2, runs >> 2) : n)));
  }
}
peer?.close();
engine.dispose();

const fmt = (x: number | null, d = 3) => (x === null ? '-' : x.toFixed(d));
const rows = CASES.map((name) => {
  const o = median(samples.ours[name]), p = median(samples.peer[name]);
  return { case: name, oursMs: o, peerMs: p, peerOverOurs: o && p ? p / o : null, samples: samples.ours[name].length };
});
console.log(`\nk = ${k}, LeNet 300-100 s=500, medians over ${rounds} alternating rounds`);
console.log('case          ours ms   PyTorch ms   PyTorch/ours');
for (const r of rows) console.log(`${r.case.padEnd(12)} ${fmt(r.oursMs).padStart(8)} ${fmt(r.peerMs).padStart(12)} ${fmt(r.peerOverOurs, 2).padStart(14)}`);
const oneShot = rows.find((r) => r.case === 'oneshot-b1')!.oursMs!;
const derived = {
  eachB16OverOneShot: rows.find((r) => r.case === 'each-b16')!.oursMs! / oneShot,
  binaryOverOneShot: rows.find((r) => r.case === 'binary-b1')!.oursMs! / oneShot,
};
console.log(`each-b16 / oneshot-b1 = ${derived.eachB16OverOneShot.toFixed(2)} (target ≤ 5); binary-b1 / oneshot-b1 = ${derived.binaryOverOneShot.toFixed(2)} (target ≤ 3)`);
console.log(`load average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
mkdirSync(dirname(values.out!), { recursive: true });
writeFileSync(
  values.out!,
  JSON.stringify({ date: new Date().toISOString(), k, backend: backend.name, kernels: kernels.name, simd: addon?.simdLevel() ?? null, cpuFlags: simdFlags, peer: peer?.info ?? null, rows, derived }, null, 2) + '\n',
);
console.log(`wrote ${values.out}`);
