/**
 * Past one machine (docs/scaling.md): how many machines, and what latency, an inferred-task request needs
 * at k = 10^4, 10^5, 10^6 tasks when the task set is sharded over replica groups, computed from our own
 * measured kernel and engine costs (the JSON `supsup bench --out` writes).
 *
 *   node --import tsx bench/scaling.ts --bench .bench/bench.json [--rate 50] [--slo-ms 250] [--gather-ms 2]
 *                                     [--max-util 0.7] [--mem-gib 48] [--per-task-us X --fixed-ms Y]
 *
 * Model (one machine = the benchmark's machine, both cores):
 * - an inferred request on a shard holding k_s tasks costs s(k_s) = t0 + c · k_s of machine time: t0 the
 *   k-independent part (superposed forward and backward over the batch, with the global per-weight count),
 *   c the measured per-task cost of the scores kernel (∂obj/∂α_i for every stored mask: the service default,
 *   one-shot from the whole batch, runs it once per request), fitted between the two largest LeNet k of the
 *   benchmark (bank outside the caches);
 * - every shard runs the request at once; the router adds `gather` (one LAN round trip) and takes the best;
 * - each shard group has r replicas so that utilization ρ = R · s / r stays under --max-util; queueing is
 *   M/D/1: mean wait ρ s / (2 (1 − ρ));
 * - a shard's bank (k_s · P / 8 bytes) must fit --mem-gib;
 * - the smallest number of shards whose mean latency s + wait + gather meets --slo-ms is chosen.
 * Given-task requests go to their task's shard only and cost what batch-1 given costs: k-independent.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface KernelRow {
  model: string;
  weights: number;
  k: number;
  nativeMs: number;
}
interface EngineRow {
  model: string;
  weights: number;
  k: number;
  givenBatch1Ms: number;
  givenBatch128Ms: number;
  inferWholeBatch128Ms: number;
}

const { values: o } = parseArgs({
  options: {
    bench: { type: 'string', default: '.bench/bench.json' },
    rate: { type: 'string', default: '50' },
    'slo-ms': { type: 'string', default: '250' },
    'gather-ms': { type: 'string', default: '2' },
    'max-util': { type: 'string', default: '0.7' },
    'mem-gib': { type: 'string', default: '48' },
    'per-task-us': { type: 'string' },
    'fixed-ms': { type: 'string' },
  },
});

const bench = JSON.parse(readFileSync(o.bench!, 'utf8')) as { date: string; kernels: string; kernelRows: KernelRow[]; engineRows: EngineRow[] };
const lenet = bench.kernelRows.filter((r) => r.model.startsWith('LeNet')).sort((a, b) => a.k - b.k);
const [lo, hi] = lenet.slice(-2);
const kPart = (r: KernelRow) => r.nativeMs;
const fittedC = (kPart(hi) - kPart(lo)) / (hi.k - lo.k);
const engineHi = bench.engineRows.find((r) => r.model === hi.model && r.k === hi.k)!;
const fittedT0 = Math.max(engineHi.givenBatch128Ms, engineHi.inferWholeBatch128Ms - kPart(hi));
const c = o['per-task-us'] ? Number(o['per-task-us']) / 1000 : fittedC;
const t0 = o['fixed-ms'] ? Number(o['fixed-ms']) : fittedT0;
const P = hi.weights;
const rate = Number(o.rate);
const slo = Number(o['slo-ms']);
const gather = Number(o['gather-ms']);
const maxUtil = Number(o['max-util']);
const memBytes = Number(o['mem-gib']) * 2 ** 30;

console.log(`bench ${o.bench} (${bench.date}, ${bench.kernels}), model ${hi.model}, P = ${P.toLocaleString('en')}`);
console.log(
  `per-task cost c = ${(c * 1000).toFixed(2)} µs (scores kernel, slope k = ${lo.k} → ${hi.k}` +
    `${o['per-task-us'] ? ', overridden' : ''}), fixed t0 = ${t0.toFixed(1)} ms (inferred, batch 128, less the scores${o['fixed-ms'] ? ', overridden' : ''}); given task, batch 1: ${engineHi.givenBatch1Ms.toFixed(2)} ms`,
);
console.log(`inferred requests: ${rate}/s of batch 128, mean-latency target ${slo} ms, router gather ${gather} ms, utilization ≤ ${maxUtil}, bank ≤ ${o['mem-gib']} GiB per machine\n`);

interface Plan {
  shards: number;
  perShard: number;
  replicas: number;
  machines: number;
  service: number;
  latency: number;
  bankGiB: number;
}

function plan(k: number, shards: number): Plan {
  const perShard = Math.ceil(k / shards);
  const service = t0 + c * perShard;
  const replicas = Math.max(1, Math.ceil((rate * service) / 1000 / maxUtil));
  const rho = (rate * service) / 1000 / replicas;
  const wait = (rho * service) / (2 * (1 - rho));
  return { shards, perShard, replicas, machines: shards * replicas, service, latency: service + wait + (shards > 1 ? gather : 0), bankGiB: (perShard * P) / 8 / 2 ** 30 };
}

const rows: string[][] = [['k', 'one machine: s(k) ms', 'shards', 'tasks per shard', 'bank GiB per machine', 'replicas per shard', 'machines', 'mean latency ms']];
for (const k of [1e4, 1e5, 1e6]) {
  let chosen: Plan | undefined;
  for (let s = 1; s <= 100_000 && !chosen; s = s < 10 ? s + 1 : Math.ceil(s * 1.05)) {
    const p = plan(k, s);
    if (p.latency <= slo && p.bankGiB <= Number(o['mem-gib']) && (p.perShard * P) / 8 <= memBytes) chosen = p;
  }
  const single = t0 + c * k;
  rows.push(
    chosen
      ? [k.toExponential(0), single.toFixed(0), String(chosen.shards), chosen.perShard.toLocaleString('en'), chosen.bankGiB.toFixed(2), String(chosen.replicas), String(chosen.machines), chosen.latency.toFixed(0)]
      : [k.toExponential(0), single.toFixed(0), 'none: t0 plus queueing alone is over the target', '', '', '', '', ''],
  );
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((x, i) => x.padStart(widths[i])).join('  '));
