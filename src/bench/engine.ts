// End-to-end engine benchmark: given-task classification at batch 1 and 128, and one-shot task inference
// at batch 128 (deciding from the first example, as the paper does, and from the whole batch), on banks of
// k random masks. Memory: the bank's bytes against k·P/8, and the process RSS growth while building it.
// `supsup bench` runs it.
import { performance } from 'node:perf_hooks';
import { type Architecture, maskWords, presetArchitecture, weightCount } from '../core/architecture.ts';
import { Engine } from '../core/engine.ts';
import { type MaskKernels } from '../core/kernels/mask-kernels.ts';
import { Xoshiro128 } from '../core/prng.ts';

export interface EngineCase {
  model: string;
  architecture: Architecture;
  k: number;
}

export interface EngineRow {
  model: string;
  weights: number;
  k: number;
  givenBatch1Ms: number;
  givenBatch128Ms: number;
  inferFirstBatch128Ms: number;
  inferWholeBatch128Ms: number;
  bankBytes: number;
  /** k·P/8: the bits themselves. */
  idealBytes: number;
  bankOverIdeal: number;
  rssGrowthBytes: number;
  runs: number;
}

export const ENGINE_CASES: EngineCase[] = [
  { model: 'LeNet 300-100 s=500', architecture: presetArchitecture('lenet-300-100', 500), k: 100 },
  { model: 'LeNet 300-100 s=500', architecture: presetArchitecture('lenet-300-100', 500), k: 1000 },
  { model: 'LeNet 300-100 s=500', architecture: presetArchitecture('lenet-300-100', 500), k: 2500 },
  { model: 'FC 1024-1024 s=500', architecture: presetArchitecture('fc-1024-1024', 500), k: 250 },
];

/** A density-0.5 mask straight from 32 random bits per word (padding bits cleared). */
function fastRandomMask(arch: Architecture, rng: Xoshiro128): Uint32Array {
  const words = maskWords(arch);
  const mask = new Uint32Array(words);
  for (let j = 0; j < words; j++) mask[j] = rng.nextUint32();
  const pad = words * 32 - weightCount(arch);
  if (pad > 0) mask[words - 1] &= 0xffffffff >>> pad;
  return mask;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function time(runs: number, fn: () => void): number {
  fn(); // warm-up: caches and lazily built dense layers
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

export function benchEngine(kernels: MaskKernels, opts: { cases?: EngineCase[]; runs?: number; log?: (s: string) => void } = {}): EngineRow[] {
  const runs = opts.runs ?? 7;
  const log = opts.log ?? (() => {});
  const rows: EngineRow[] = [];
  for (const c of opts.cases ?? ENGINE_CASES) {
    const rng = new Xoshiro128(c.k);
    const rssBefore = process.memoryUsage().rss;
    const engine = new Engine({ architecture: c.architecture, seed: 1, normalization: { mean: 0.1307, std: 0.3081 }, kernels, expectedTasks: c.k });
    for (let t = 0; t < c.k; t++) engine.addTask(`t${t}`, fastRandomMask(c.architecture, rng));
    const rssGrowthBytes = process.memoryUsage().rss - rssBefore;
    const inputs = Float32Array.from({ length: 128 * c.architecture.inputSize }, () => rng.nextFloat());
    const one = inputs.slice(0, c.architecture.inputSize);
    const given1 = engine.validate({ inputs: one, batch: 1, task: 't0' });
    const given128 = engine.validate({ inputs, batch: 128, task: 't0' });
    const first = engine.validate({ inputs, batch: 128, inference: { decideFrom: 'first' } });
    const whole = engine.validate({ inputs, batch: 128, inference: { decideFrom: 'batch' } });
    const weights = weightCount(c.architecture);
    const idealBytes = Math.ceil((c.k * weights) / 8);
    const row: EngineRow = {
      model: c.model,
      weights,
      k: c.k,
      givenBatch1Ms: time(runs * 3, () => engine.classify(given1)),
      givenBatch128Ms: time(runs, () => engine.classify(given128)),
      inferFirstBatch128Ms: time(runs, () => engine.classify(first)),
      inferWholeBatch128Ms: time(runs, () => engine.classify(whole)),
      bankBytes: engine.maskBankBytes,
      idealBytes,
      bankOverIdeal: engine.maskBankBytes / idealBytes,
      rssGrowthBytes,
      runs,
    };
    engine.dispose();
    log(
      `${row.model} k=${row.k}: given b1 ${row.givenBatch1Ms.toFixed(2)} ms, b128 ${row.givenBatch128Ms.toFixed(2)} ms; ` +
        `inferred b128 first ${row.inferFirstBatch128Ms.toFixed(2)} ms, whole ${row.inferWholeBatch128Ms.toFixed(2)} ms; ` +
        `bank ${(row.bankBytes / 1e6).toFixed(2)} MB = ${row.bankOverIdeal.toFixed(4)} × k·P/8`,
    );
    rows.push(row);
  }
  return rows;
}
