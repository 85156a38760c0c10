/**
 * The CUDA path's figures (issue 14), for LeNet 300-100 with s = 500 outputs (P = 315,200) and random masks of
 * density 0.5. Run by bench/gpu/run-on-device.sh on the GPU machine; runs anywhere, with empty GPU columns and
 * the reason when there is no device.
 *
 *   node --import tsx bench/gpu/cuda-bench.ts --out FILE [--ks 100,1000,2500,25000] [--runs 200]
 *        [--cpu-max-k 2500] [--cpu-runs 10] [--torch torch.json] [--commit TEXT]
 *
 * Per k, all on the device with the bank resident:
 * - floor: one pass reading every byte of the bank (CUDA events, median), the device's memory-read floor
 * - one-shot: ∂H/∂α for every slot from 1 example (forward and backward of the superposition, the weight
 *   gradients, the bit-matrix scores), host to host: the example goes up, k gradients come back
 * - given task, batch 1 and 1024: logits decoded from the packed sign and mask bits, host to host
 *   (…DeviceMs beside each: the kernels alone, CUDA events)
 * and on the CPU (k ≤ --cpu-max-k; building a MaskBank of 25,000 masks in TypeScript takes minutes): the same
 * one-shot and given-task passes through SupermaskNetwork with the native kernels and tfjs wasm.
 * With --torch (bench/gpu/torch_given_task.py's JSON): PyTorch's W ⊙ M then matmul on the same GPU, and ratios.
 */
import { randomFillSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, layerShapes, maskWords, weightCount } from '../../src/core/architecture.ts';
import { type BaseNetwork, generateBaseNetwork } from '../../src/core/base-network.ts';
import { selectKernels } from '../../src/platform/kernels.ts';
import { BLOCK_SLOTS } from '../../src/core/mask-bank.ts';
import { Xoshiro128 } from '../../src/core/prng.ts';
import { SupermaskNetwork } from '../../src/core/supermask-network.ts';
import { type CudaBank, describeDevice, probeCuda } from '../../src/platform/cuda/cuda-addon.ts';
import { selectBackend } from '../../src/platform/backend.ts';

const ARCH: Architecture = { inputSize: 784, hidden: [300, 100], outputs: 500, classes: 10 };
const GIVEN_BATCHES = [1, 1024];

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    ks: { type: 'string', default: '100,1000,2500,25000' },
    runs: { type: 'string', default: '200' },
    'cpu-max-k': { type: 'string', default: '2500' },
    'cpu-runs': { type: 'string', default: '10' },
    torch: { type: 'string' },
    commit: { type: 'string', default: '' },
  },
});
const ks = values.ks!.split(',').map(Number);
const runs = Number(values.runs);
const cpuMaxK = Number(values['cpu-max-k']);
const cpuRuns = Number(values['cpu-runs']);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median milliseconds of fn over n timed calls after 3 untimed ones. */
function time(n: number, fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}

/** Median device milliseconds of fn's pass (bank.lastPassSeconds after each call). */
function deviceTime(bank: CudaBank, n: number, fn: () => void): number {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    fn();
    t.push(bank.lastPassSeconds() * 1e3);
  }
  return median(t);
}

/** A bank of k random masks (density 0.5, no bits past P), slots k.. of the last block empty. */
function randomBank(k: number, words: number): Uint32Array {
  const blocks = Math.ceil(k / BLOCK_SLOTS);
  const raw = new Uint32Array(blocks * words * BLOCK_SLOTS);
  for (let off = 0; off < raw.length; off += 2 ** 24) randomFillSync(raw.subarray(off, Math.min(raw.length, off + 2 ** 24)));
  const tail = weightCount(ARCH) % 32;
  for (let b = 0; b < blocks; b++) {
    const last = (b * words + words - 1) * BLOCK_SLOTS;
    for (let s = 0; s < BLOCK_SLOTS; s++) {
      if (tail) raw[last + s] &= (1 << tail) - 1;
      if (b * BLOCK_SLOTS + s >= k) for (let j = 0; j < words; j++) raw[(b * words + j) * BLOCK_SLOTS + s] = 0;
    }
  }
  return raw;
}

function maskOf(raw: Uint32Array, words: number, slot: number): Uint32Array {
  const m = new Uint32Array(words);
  const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
  for (let j = 0; j < words; j++) m[j] = raw[base + j * BLOCK_SLOTS];
  return m;
}

function inputs(batch: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: batch * ARCH.inputSize }, () => (rng.nextFloat() - 0.1307) / 0.3081);
}

function signBits(base: BaseNetwork, words: number): Uint32Array {
  const signs = new Uint32Array(words);
  let w = 0;
  for (const layer of base.layers) for (let i = 0; i < layer.length; i++, w++) if (layer[i] > 0) signs[w >>> 5] |= 1 << (w & 31);
  return signs;
}

interface GpuRow {
  residentBytes: number;
  uploadMs: number;
  superposeMs: number;
  floorMs: number;
  floorGBps: number;
  oneShotMs: number;
  /** The same pass's kernels alone (CUDA events, without the copies in and out). */
  oneShotDeviceMs: number;
  oneShotOverFloor: number;
  scoresFromHostVMs: number;
  given: Record<string, number>;
}

function benchGpu(bank: CudaBank, raw: Uint32Array, k: number, base: BaseNetwork, words: number, rng: Xoshiro128): GpuRow {
  let t0 = performance.now();
  bank.upload(raw);
  const uploadMs = performance.now() - t0;
  const shapes = layerShapes(ARCH);
  bank.attachNetwork(Int32Array.from(shapes.flatMap((s) => [s.in, s.out, s.offset])), Float32Array.from(base.layers, (w) => Math.abs(w[0])), signBits(base, words), ARCH.classes);
  t0 = performance.now();
  bank.superpose(Int32Array.from({ length: k }, (_, i) => i));
  const superposeMs = performance.now() - t0;
  const residentBytes = bank.residentBytes();
  const floorMs = bank.readFloorSeconds(runs) * 1e3;
  const slots = bank.blocks() * BLOCK_SLOTS;
  const x1 = inputs(1, rng);
  const grads = new Float32Array(slots);
  const oneShotMs = time(runs, () => bank.slotGradients(x1, 1, 0, false, grads));
  const oneShotDeviceMs = deviceTime(bank, runs, () => bank.slotGradients(x1, 1, 0, false, grads));
  const v = Float32Array.from({ length: words * 32 }, () => rng.nextFloat() - 0.5);
  const scoresFromHostVMs = time(runs, () => bank.scores(v, 1, grads));
  const given: Record<string, number> = {};
  for (const batch of GIVEN_BATCHES) {
    const x = inputs(batch, rng);
    const out = new Float32Array(batch * ARCH.outputs);
    given[`batch${batch}Ms`] = time(runs, () => bank.taskLogits(k >> 1, x, batch, out));
    given[`batch${batch}DeviceMs`] = deviceTime(bank, runs, () => bank.taskLogits(k >> 1, x, batch, out));
  }
  return { residentBytes, uploadMs, superposeMs, floorMs, floorGBps: residentBytes / floorMs / 1e6, oneShotMs, oneShotDeviceMs, oneShotOverFloor: oneShotMs / floorMs, scoresFromHostVMs, given };
}

function benchCpu(raw: Uint32Array, k: number, words: number, rng: Xoshiro128): { kernels: string; oneShotMs: number; given: Record<string, number> } {
  const { kernels } = selectKernels('auto');
  const net = new SupermaskNetwork(generateBaseNetwork(ARCH, 1), kernels, k);
  for (let s = 0; s < k; s++) net.addMask(maskOf(raw, words, s));
  const x1 = tf.tensor2d(inputs(1, rng), [1, ARCH.inputSize]);
  const oneShotMs = time(cpuRuns, () => net.gradientsOver(x1, 'entropy', false));
  const given: Record<string, number> = {};
  for (const batch of GIVEN_BATCHES) {
    const x = tf.tensor2d(inputs(batch, rng), [batch, ARCH.inputSize]);
    given[`batch${batch}Ms`] = time(cpuRuns, () => tf.tidy(() => net.taskLogits(k >> 1, x).dataSync()));
    x.dispose();
  }
  x1.dispose();
  net.dispose();
  return { kernels: kernels.name, oneShotMs, given };
}

const probe = probeCuda();
const backend = await selectBackend('wasm');
const words = maskWords(ARCH);
const base = generateBaseNetwork(ARCH, 1);
const torch = values.torch ? (JSON.parse(readFileSync(values.torch, 'utf8')) as { rows: { batch: number; maskThenMatmulMs: number; matmulOnlyMs: number }[] }) : null;
const rows: object[] = [];
for (const k of ks) {
  const rng = new Xoshiro128(k);
  const raw = randomBank(k, words);
  const row: Record<string, unknown> = { k, weights: weightCount(ARCH), words, bankBytes: raw.byteLength };
  if (probe.addon) {
    const bank = new probe.addon.CudaBank(words);
    try {
      row.gpu = benchGpu(bank, raw, k, base, words, rng);
    } finally {
      bank.dispose();
    }
  }
  if (k <= cpuMaxK) row.cpu = benchCpu(raw, k, words, rng);
  const gpu = row.gpu as GpuRow | undefined, cpu = row.cpu as ReturnType<typeof benchCpu> | undefined;
  if (gpu && cpu) row.cpuOverGpuOneShot = cpu.oneShotMs / gpu.oneShotMs;
  if (gpu && torch) {
    row.torchOverOurs = Object.fromEntries(
      torch.rows.map((r) => [`batch${r.batch}`, { maskThenMatmul: r.maskThenMatmulMs / gpu.given[`batch${r.batch}Ms`], matmulOnly: r.matmulOnlyMs / gpu.given[`batch${r.batch}Ms`] }]),
    );
  }
  rows.push(row);
  console.log(JSON.stringify(row));
}
const report = {
  date: new Date().toISOString(),
  commit: values.commit,
  device: probe.device ? describeDevice(probe.device) : null,
  deviceReason: probe.reason,
  cpu: { model: cpus()[0]?.model, cores: cpus().length, loadavg: loadavg() },
  tfjsBackend: backend.name,
  architecture: ARCH,
  runs,
  cpuRuns,
  timing: 'medians; GPU figures host to host (inputs up, results down) except floorMs (CUDA events)',
  rows,
  torch,
};
if (values.out) writeFileSync(values.out, JSON.stringify(report, null, 2) + '\n');
