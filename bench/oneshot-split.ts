/**
 * One-shot from one example in process, with and without the background split (src/core/background-split.ts), at
 * k random masks (LeNet 300-100, s = 500, random words as bench/rest-scale.ts). Each case alternates in one loop:
 *
 *   node --import tsx bench/oneshot-split.ts [--k 2500] [--runs 40]
 *
 * For MNIST test digits and for random inputs in [0, 1), both normalised as the server does, medians (ms) of:
 * - plain: V from x (native superposed pass) and the dense `scores` kernel (the path before the sparse kernel);
 * - sparse: the same V through `scoresSparse` (reads only the words where V is not zero);
 * - split: SupermaskNetwork.scoresFromCounts, what one-shot calls (V' from x − x0 and δ0 in one pass, the sparse
 *   pass on V', the column-sum term), and its parts; the share of all-zero words of V and of V';
 * - the memory-read floor of the whole bank, and a whole Engine.classify one-shot call.
 * Also the one pass that counts every task's column sums (what a model load adds), per SIMD path.
 */
import { loadavg } from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { presetArchitecture, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { backgroundValue } from '../src/core/background-split.ts';
import { Engine } from '../src/core/engine.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { superposedVNative } from '../src/core/superposed-pass.ts';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { loadNativeAddon, loadNativeKernels, type SimdLevel } from '../src/platform/native-addon.ts';
import { median } from './peer-client.ts';

const { values } = parseArgs({ options: { k: { type: 'string', default: '2500' }, runs: { type: 'string', default: '40' } } });
const k = Number(values.k), runs = Number(values.runs);
await selectBackend('wasm');
const addon = loadNativeAddon().addon;
const kernels = loadNativeKernels().kernels;
if (!addon || !kernels?.superposed) throw new Error(loadNativeAddon().reason);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
console.log(`k = ${k}; cpu flags: ${flags.filter((f) => /^(avx2|fma|avx512\w*)$/.test(f)).join(' ')}; scores ${addon.cpuPath()}, newer kernels ${addon.simdLevel()}; load ${load()}`);

const architecture = presetArchitecture('lenet-300-100', 500);
const words = Math.ceil(weightCount(architecture) / 32), pad = words * 32 - weightCount(architecture);
const base = generateBaseNetwork(architecture, 1);
const rng = new Xoshiro128(k);
const masks = Array.from({ length: k }, () => {
  const m = new Uint32Array(words);
  for (let j = 0; j < words; j++) m[j] = rng.nextUint32();
  if (pad > 0) m[words - 1] &= 0xffffffff >>> pad;
  return m;
});
const net = new SupermaskNetwork(base, kernels, k);
for (const m of masks) net.addMask(m);
const timed = (fn: () => void) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

// The column sums of all k tasks, as the first one-example call after a load counts them.
const levels: SimdLevel[] = ['avx512', 'avx2', 'scalar'];
const all = net.bank.occupiedSlots(), sums = new Int16Array(k * 300);
const countMs = levels
  .filter((l) => levels.indexOf(l) >= levels.indexOf(addon.setSimdLevel('auto')))
  .map((level) => {
    addon.setSimdLevel(level);
    const ms = median(Array.from({ length: 3 }, () => timed(() => kernels.columnSums!.sums(net.bank.raw, words, all, net.signed.signs, 784, 300, sums))));
    return `${level} ${ms!.toFixed(1)} ms`;
  });
addon.setSimdLevel('auto');
console.log(`column sums of all ${k} tasks (one pass over their input layer): ${countMs.join(', ')}`);
net.inputColumnSums!.current(net.bank);

const norm = (p: number) => Math.fround(Math.fround(p - Math.fround(MNIST_NORMALIZATION.mean)) / Math.fround(MNIST_NORMALIZATION.std));
const images = loadMnistData().test.images;
const inputs: Record<string, Float32Array[]> = {
  'MNIST test digits': Array.from({ length: 20 }, (_, e) => images.slice(e * 784, (e + 1) * 784)),
  'random inputs in [0, 1)': Array.from({ length: 20 }, () => Float32Array.from({ length: 784 }, () => rng.nextFloat())),
};
const flat = new Float32Array(base.layers.flatMap((l) => Array.from(l)));
const zeroShare = (v: Float32Array) => {
  let zero = 0;
  for (let j = 0; j < words; j++) if (v.subarray(j * 32, j * 32 + 32).every((f) => f === 0)) zero++;
  return zero / words;
};
const out = new Float32Array(net.bank.slotCapacity);
for (const [name, xs] of Object.entries(inputs)) {
  const v = new Float32Array(words * 32), vSplit = new Float32Array(words * 32), delta0 = new Float64Array(300);
  const t: Record<string, number[]> = { plain: [], sparse: [], split: [], x0: [], vSplit: [], sparseSplit: [], term: [], floor: [] };
  const zero = { v: [] as number[], vSplit: [] as number[] };
  for (let r = 0; r < runs; r++) {
    const x = xs[r % xs.length].map(norm);
    t.plain.push(timed(() => {
      superposedVNative(kernels.superposed!, flat, net.signed.sizes, net.bank.count, k, x, 'entropy', 10, v);
      addon.scores(net.bank.raw, words, net.bank.blocks, v, 1, out);
    }));
    t.sparse.push(timed(() => {
      superposedVNative(kernels.superposed!, flat, net.signed.sizes, net.bank.count, k, x, 'entropy', 10, v);
      addon.scoresSparse(net.bank.raw, words, net.bank.blocks, v, out);
    }));
    t.split.push(timed(() => net.scoresFromCounts(net.bank.count, k, x, 'entropy')));
    let x0 = 0;
    t.x0.push(timed(() => (x0 = backgroundValue(x))));
    t.vSplit.push(timed(() => superposedVNative(kernels.superposed!, flat, net.signed.sizes, net.bank.count, k, x, 'entropy', 10, vSplit, { x0, delta0 })));
    t.sparseSplit.push(timed(() => addon.scoresSparse(net.bank.raw, words, net.bank.blocks, vSplit, out)));
    t.term.push(timed(() => net.inputColumnSums!.addTerm(net.bank, x0 * net.signed.scales[0], delta0, undefined, out)));
    t.floor.push(timed(() => addon.readFloor(net.bank.raw)));
    if (r < xs.length) {
      zero.v.push(zeroShare(v));
      zero.vSplit.push(zeroShare(vSplit));
    }
  }
  const ms = (key: string) => median(t[key])!.toFixed(2);
  console.log(`${name}: all-zero words of V ${(100 * median(zero.v)!).toFixed(1)}%, of V' ${(100 * median(zero.vSplit)!).toFixed(1)}% (median over inputs)`);
  console.log(
    `  ms: plain (V + dense scores) ${ms('plain')}, V + sparse scores ${ms('sparse')}, split ${ms('split')} ` +
      `[x0 ${ms('x0')}, V' pass ${ms('vSplit')}, sparse on V' ${ms('sparseSplit')}, term ${ms('term')}]; bank read floor ${ms('floor')}`,
  );
}

const engine = new Engine({ architecture, seed: 1, normalization: MNIST_NORMALIZATION, kernels, expectedTasks: k });
masks.forEach((m, i) => engine.addTask(`t${i}`, m));
masks.length = 0;
for (const [name, xs] of Object.entries(inputs)) {
  const calls = xs.map((x) => engine.validate({ inputs: x, batch: 1 }));
  engine.classify(calls[0]);
  const ms = Array.from({ length: runs }, (_, r) => timed(() => engine.classify(calls[r % calls.length])));
  console.log(`Engine.classify, one-shot from 1 example, ${name}: ${median(ms)!.toFixed(2)} ms`);
}
console.log(`load after ${load()}`);
