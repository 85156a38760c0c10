// Which score should re-rank the one-shot gradient's top masks for a task decided from one example, and how
// many masks? For the first example of each of 4 test batches per task (the batches `supsup eval` draws, seed 1),
// both gradients (H and G) rank all k masks; the top 8 of each run exactly; every score below then picks among
// the top m, and the table gives the task-id accuracy per score and m (m = 1: the gradient's own choice, the
// paper's). An accuracy eval, not a timing: no quiet.sh needed.
//
//   node --import tsx bench/rerank-scores.ts [--model models/permuted-mnist60k-lenet-lr3e-4] [--batches 4]
import * as tf from '@tensorflow/tfjs-core';
import { parseArgs } from 'node:util';
import { orderTasks } from '../src/cli/commands/eval.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { deriveSeed, shuffledIndices } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { fitOf } from '../src/core/unknown-score.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { loadModel } from '../src/model/model-store.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { selectKernels } from '../src/platform/kernels.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'models/permuted-mnist60k-lenet-lr3e-4' }, batches: { type: 'string', default: '4' } } });
await selectBackend('wasm');
const { manifest, masks } = await loadModel(values.model);
const { architecture: arch, normalization } = manifest;
const net = new SupermaskNetwork(generateBaseNetwork(arch, manifest.seed), selectKernels('auto').kernels, manifest.tasks.length);
const slotOf = new Map(manifest.tasks.map((t) => [t.id, net.addMask(masks.get(t.id)!)]));
const slots = net.bank.occupiedSlots();
/** The exact forward of one example under one slot: from the bits where the kernels have it (as the engine), else tfjs. */
const exactLogits = (x: Float32Array) => (slot: number): Float32Array => {
  const forward = net.kernels.forwardBits;
  if (!forward) return tf.tidy(() => net.taskLogits(slot, tf.tensor2d(x, [1, x.length])).dataSync() as Float32Array);
  const { words, signs, sizes, scales } = net.signed;
  const out = new Float32Array(arch.outputs);
  forward(net.bank.raw, words, slot, signs, sizes, scales, x, 1, out);
  return out;
};
const { outputs, classes } = arch;
const TOP = 8;
const M = [1, 2, 3, 4, 6, 8];

const lse = (z: Float32Array, a: number, b: number) => {
  let m = -Infinity;
  for (let i = a; i < b; i++) m = Math.max(m, z[i]);
  let s = 0;
  for (let i = a; i < b; i++) s += Math.exp(z[i] - m);
  return m + Math.log(s);
};
const entropy = (z: Float32Array, a: number, b: number) => {
  const l = lse(z, a, b);
  let h = 0;
  for (let i = a; i < b; i++) h -= Math.exp(z[i] - l) * (z[i] - l);
  return h;
};
const maxSoftmax = (z: Float32Array, a: number, b: number) => Math.exp(Math.max(...z.subarray(a, b)) - lse(z, a, b));
/** Higher is better for each. */
const SCORES: Record<string, (z: Float32Array) => number> = {
  'fit: real vs superfluous (the unknown rule’s)': (z) => fitOf(z, classes, 'real-vs-superfluous'),
  'energy of the real classes': (z) => fitOf(z, classes, 'real-energy'),
  '−entropy over all s outputs (H, exact)': (z) => -entropy(z, 0, outputs),
  '−entropy over the real classes': (z) => -entropy(z, 0, classes),
  'max softmax over the real classes': (z) => maxSoftmax(z, 0, classes),
  'max softmax over all s outputs': (z) => maxSoftmax(z, 0, outputs),
};

const test = loadDataset('mnist').test;
const P = arch.inputSize;
const right: Record<string, number> = {};
const rank = { entropy: new Array(TOP + 1).fill(0), superfluous: new Array(TOP + 1).fill(0) };
let n = 0;
const start = performance.now();
orderTasks(manifest.tasks).forEach((t, i) => {
  const ds = taskDataset(t.transform, test);
  const order = shuffledIndices(ds.count, deriveSeed(1, i, 7));
  const want = slotOf.get(t.id)!;
  for (let b = 0; b < Number(values.batches); b++) {
    const x = ds.images.slice(order[b * 128] * P, (order[b * 128] + 1) * P).map((v) => Math.fround(v - Math.fround(normalization.mean)) / Math.fround(normalization.std));
    for (const objective of ['entropy', 'superfluous'] as const) {
      const g = net.scoresFromCounts(net.bank.count, slots.length, x, objective);
      const top = Array.from(slots).sort((a, c) => g[a] - g[c] || a - c).slice(0, TOP);
      const r = top.indexOf(want);
      rank[objective][r < 0 ? TOP : r]++;
      const logits = top.map(exactLogits(x));
      for (const [name, score] of Object.entries(SCORES)) {
        const s = logits.map(score);
        for (const m of M) {
          let best = 0;
          for (let j = 1; j < m; j++) if (s[j] > s[best]) best = j;
          right[`${objective}|${m}|${name}`] = (right[`${objective}|${m}|${name}`] ?? 0) + (top[best] === want ? 1 : 0);
        }
      }
    }
    n++;
  }
});
net.dispose();
console.log(`${values.model}: ${manifest.tasks.length} tasks, ${n} first examples, ${((performance.now() - start) / 1000).toFixed(0)} s`);
for (const objective of ['entropy', 'superfluous'] as const) {
  const o = objective === 'entropy' ? 'H' : 'G';
  console.log(`\none-shot ${o}: where the true task ranks in the gradient's top ${TOP} (last: further down): ${rank[objective].join(' / ')}`);
  console.log(`| score of the exact forward | ${M.map((m) => `m = ${m}`).join(' | ')} |`);
  console.log(`|---|${M.map(() => '---|').join('')}`);
  for (const name of Object.keys(SCORES)) console.log(`| ${name} | ${M.map((m) => `${((100 * right[`${objective}|${m}|${name}`]) / n).toFixed(2)}%`).join(' | ')} |`);
}
