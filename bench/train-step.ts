/**
 * Training step benchmark: milliseconds per RMSProp step of supermask training (forward, backward, update)
 * at the paper's batch of 128, for LeNet 300-100 (s = 100) and FC 1024-1024 (s = 500), on one core.
 * Reports the median of several timed blocks, so other load on the machine shows as spread, not as bias.
 *
 *   node --import tsx bench/train-step.ts [--steps 200] [--blocks 5] [--backend wasm|cpu] [--arch lenet-300-100,fc-1024-1024]
 *                                         [--update auto|typescript]
 *
 * --update typescript times the per-weight RMSProp and mask updates in TypeScript instead of the native addon
 * (the same bits either way), to show what the addon saves.
 */
import { parseArgs } from 'node:util';
import { type PresetName, presetArchitecture } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { permutedTask } from '../src/data/transforms.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { BatchSampler, taskSource } from '../src/train/batches.ts';
import { selectScoreUpdate } from '../src/platform/kernels.ts';
import { typescriptScoreUpdate } from '../src/core/score-update.ts';
import { SupermaskOptimizer } from '../src/train/trainer.ts';

const { values } = parseArgs({
  options: { steps: { type: 'string' }, blocks: { type: 'string' }, backend: { type: 'string' }, arch: { type: 'string' }, update: { type: 'string' } },
});
const steps = Number(values.steps ?? 200);
const blocks = Number(values.blocks ?? 5);
const backend = await selectBackend((values.backend ?? 'wasm') as 'wasm' | 'cpu');
const outputs: Record<PresetName, number> = { 'lenet-300-100': 100, 'fc-1024-1024': 500 };
const archs = (values.arch ?? 'lenet-300-100').split(',') as PresetName[];
const train = loadDataset('mnist').train;
if (values.update !== undefined && values.update !== 'auto' && values.update !== 'typescript') throw new Error('--update must be auto or typescript');
const update = values.update === 'typescript' ? typescriptScoreUpdate : selectScoreUpdate();

for (const name of archs) {
  const arch = presetArchitecture(name, outputs[name]);
  const base = generateBaseNetwork(arch, 1);
  const sampler = new BatchSampler(taskSource(permutedTask(0), train), 128, 1, { mean: 0.1307, std: 0.3081 });
  const opt = new SupermaskOptimizer(base, { lr: 1e-4, mask: 'gn', seed: 1, update });
  const run = (n: number) => {
    for (let i = 0; i < n; i++) {
      sampler.next();
      opt.step(sampler.x, sampler.xT, sampler.labels);
    }
  };
  run(20); // warm-up: JIT, wasm memory growth
  const times: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const t0 = performance.now();
    run(steps);
    times.push((performance.now() - t0) / steps);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${name} s=${arch.outputs}, batch 128, ${backend.name}, update ${update.name}: ${median.toFixed(2)} ms/step median ` +
      `(min ${times[0].toFixed(2)}, max ${times[times.length - 1].toFixed(2)}; ${blocks} blocks of ${steps}) → ` +
      `${((median * 1000) / 1000).toFixed(1)} s per 1000-step task`,
  );
}
