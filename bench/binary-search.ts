/**
 * Binary search from one example in process, against one-shot from the same example and against another tree's
 * code (its src/ and its addon build), alternating in every round (k random masks, LeNet 300-100, s = 500, as
 * bench/rest-scale.ts; MNIST test digits normalised as the server does):
 *
 *   node --import tsx bench/binary-search.ts [--k 2500] [--runs 30] [--old /tmp/main-tree] [--simd avx2]
 *
 * --old: a checkout of another branch (e.g. `git archive main | tar -x -C DIR`, with that branch's
 * build/Release/supsup_kernels.node and a node_modules link), whose SupermaskNetwork and inferTasks run beside
 * this tree's in the same process. Prints the medians of wall and CPU time (ms; CPU: the process's user + system
 * time, both kernel threads, over the call), binary ÷ one-shot per tree, this ÷ old, and whether both trees
 * picked the same slots.
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { presetArchitecture } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import type { InferenceOptions } from '../src/contract/classify.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { median } from './peer-client.ts';
import { randomBankMask } from './random-bank-model.ts';

const { values } = parseArgs({
  options: { k: { type: 'string', default: '2500' }, runs: { type: 'string', default: '30' }, old: { type: 'string' }, simd: { type: 'string', default: 'auto' } },
});
const k = Number(values.k), runs = Number(values.runs);
await selectBackend('wasm');

interface Tree {
  name: string;
  search: (x: tf.Tensor2D, method: 'binary' | 'one-shot') => number;
}

const architecture = presetArchitecture('lenet-300-100', 500);
const rng = new Xoshiro128(k);
const masks = Array.from({ length: k }, () => randomBankMask(architecture, rng));

/** A tree's network over the same masks, through its own modules (and so its own addon build). */
async function tree(name: string, root: string): Promise<Tree> {
  const load = (path: string) => import(pathToFileURL(resolve(root, path)).href);
  const { SupermaskNetwork } = await load('src/core/supermask-network.ts');
  const { inferTasks } = await load('src/core/task-inference.ts');
  const { loadNativeKernels, loadNativeAddon } = await load('src/platform/native-addon.ts');
  const kernels = loadNativeKernels().kernels;
  if (!kernels) throw new Error(`${name}: ${loadNativeKernels().reason}`);
  const level = values.simd as string;
  loadNativeAddon().addon.setSimdLevel(level);
  loadNativeAddon().addon.setCpuPath(level);
  const net = new SupermaskNetwork(generateBaseNetwork(architecture, 1), kernels, k);
  for (const m of masks) net.addMask(m);
  net.prepareInference();
  return {
    name,
    search: (x, method) => {
      const options: InferenceOptions = { method, objective: 'entropy', decideFrom: 'batch', epsilon: 1 / 8, rerank: 1 };
      return inferTasks(net, x, options)[0].slot;
    },
  };
}

const trees = [await tree('this', '.')];
if (values.old) trees.push(await tree('old', values.old));
masks.length = 0;

const norm = (p: number) => Math.fround(Math.fround(p - Math.fround(MNIST_NORMALIZATION.mean)) / Math.fround(MNIST_NORMALIZATION.std));
const images = loadMnistData().test.images;
const digits = Array.from({ length: 20 }, (_, e) => tf.tensor2d(images.slice(e * 784, (e + 1) * 784).map(norm), [1, 784]));
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/) ?? [];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`k = ${k}; cpu flags: ${flags.filter((f) => /^(avx2|fma|avx512(f|bw|_vnni|vbmi|_vpopcntdq))$/.test(f)).join(' ')}; simd ${values.simd}; load ${load()}`);

const ms: Record<string, number[]> = {}, cpu: Record<string, number[]> = {};
let differ = 0;
for (const t of trees) for (const x of digits.slice(0, 2)) t.search(x, 'binary'), t.search(x, 'one-shot');  // warm-up
for (let r = 0; r < runs; r++) {
  const x = digits[r % digits.length];
  const picks: number[] = [];
  for (const t of r % 2 ? [...trees].reverse() : trees) {
    for (const method of ['binary', 'one-shot'] as const) {
      const t0 = performance.now(), c0 = process.cpuUsage();
      const slot = t.search(x, method);
      const c = process.cpuUsage(c0);
      (ms[`${t.name} ${method}`] ??= []).push(performance.now() - t0);
      (cpu[`${t.name} ${method}`] ??= []).push((c.user + c.system) / 1000);
      if (method === 'binary') picks.push(slot);
    }
  }
  if (picks.some((p) => p !== picks[0])) differ++;
}
for (const [what, times] of [['wall', ms], ['cpu', cpu]] as const) {
  const med = (key: string) => median(times[key])!;
  for (const t of trees) {
    const binary = med(`${t.name} binary`), oneShot = med(`${t.name} one-shot`);
    console.log(`${what}: ${t.name}: binary ${binary.toFixed(2)} ms, one-shot ${oneShot.toFixed(2)} ms, ratio ${(binary / oneShot).toFixed(2)} ×`);
  }
  if (trees.length > 1) {
    const ratio = (method: string) => (med(`this ${method}`) / med(`old ${method}`)).toFixed(3);
    console.log(`${what}: this ÷ old: binary ${ratio('binary')}, one-shot ${ratio('one-shot')}`);
  }
}
if (trees.length > 1) console.log(`binary picks differed in ${differ} of ${runs} searches`);
console.log(`load after ${load()}`);
