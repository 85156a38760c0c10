/**
 * Per-example scores in process (issue 9, per-example decisions): the fused pass over all rows (a tfjs trace, then
 * the outer-scores kernel over every word of the bank for every row) against one background-split pass per row
 * (what `decideFrom: "each"` runs where every row splits), and one row alone (one-shot), alternating, medians.
 *
 *   node --import tsx bench/each-split.ts [--model .bench/tasks-k2500] [--rows 16] [--rounds 15]
 *
 * The model: any CPU-served model directory (bench/tasks-scale.ts builds the k = 2500 one); the rows: MNIST test digits.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MNIST_NORMALIZATION } from '../src/contract/model.ts';
import { tf } from '../src/core/tfjs.ts';
import type { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { loadMnistData } from '../src/data/datasets.ts';
import { openEngine } from '../src/runtime/open-engine.ts';

const { values: o } = parseArgs({ options: { model: { type: 'string', default: '.bench/tasks-k2500' }, rows: { type: 'string', default: '16' }, rounds: { type: 'string', default: '15' } } });
const { engine } = await openEngine(o.model, {});
const net = (engine as unknown as { net: SupermaskNetwork }).net; // the bench reaches past the engine's API on purpose
const rows = Number(o.rows), n = engine.architecture.inputSize;
const images = loadMnistData().test.images;
const data = Float32Array.from({ length: rows * n }, (_, i) => (images[i] - MNIST_NORMALIZATION.mean) / MNIST_NORMALIZATION.std);
const x = tf.tensor2d(data, [rows, n]);
const k = net.bank.taskCount;
const cases = {
  fused: () => net.gradientsOver(x, 'entropy', true),
  split: () => Array.from({ length: rows }, (_, r) => net.scoresFromCounts(net.bank.count, k, data.subarray(r * n, (r + 1) * n), 'entropy')),
  one: () => net.scoresFromCounts(net.bank.count, k, data.subarray(0, n), 'entropy'),
};
const times: Record<keyof typeof cases, number[]> = { fused: [], split: [], one: [] };
for (let round = -3; round < Number(o.rounds); round++) {
  for (const [name, run] of Object.entries(cases) as [keyof typeof cases, () => unknown][]) {
    const t0 = performance.now();
    run();
    if (round >= 0) times[name].push(performance.now() - t0);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const [f, s, one] = [median(times.fused), median(times.split), median(times.one)];
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].trim().split(/\s+/).filter((g) => /^(avx2|fma|avx512\w*|avx_vnni)$/.test(g)).join(' ');
console.log(`k = ${k}, ${rows} digits, kernels ${engine.kernelsName}; cpu flags: ${flags}`);
console.log(`fused ${f.toFixed(2)} ms, split rows ${s.toFixed(2)} ms (${(s / f).toFixed(2)} × fused), one row ${one.toFixed(2)} ms; fused ÷ one ${(f / one).toFixed(1)} ×, split ÷ one ${(s / one).toFixed(1)} ×`);
