// What the one-example unknown rule costs: ms per example of classify calls whose task is inferred from one
// example, on a model that carries the rule (unknownTask.oneExample) beside the same masks without it,
// alternating, medians. Run it under /work/wt/quiet.sh on the shared machine.
//
//   node --import tsx bench/one-example-unknown.ts [--model models/permuted-mnist60k-lenet] [--runs 7]
import { parseArgs } from 'node:util';
import { Engine } from '../src/core/engine.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { loadModel } from '../src/model/model-store.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { selectKernels } from '../src/platform/kernels.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'models/permuted-mnist60k-lenet' }, runs: { type: 'string', default: '7' } } });
await selectBackend('wasm');
const { kernels } = selectKernels('auto');
const { manifest, masks } = await loadModel(values.model);
const rule = manifest.unknownTask?.oneExample;
if (!rule) throw new Error(`${values.model} has no one-example rule: run supsup eval --calibrate-unknown first`);
const engine = (oneExample?: typeof rule) => {
  const e = new Engine({ ...manifest, kernels, expectedTasks: manifest.tasks.length, oneExample });
  for (const t of manifest.tasks) e.addTask(t.id, masks.get(t.id)!);
  return e;
};
const engines = { 'with the rule': engine(rule), without: engine() };

const test = loadDataset('mnist').test;
const n = 256;
const ds = taskDataset(manifest.tasks[17].transform, { ...test, images: test.images.subarray(0, n * 784), labels: test.labels.subarray(0, n), count: n });
const msPerExample = (e: Engine, batch: number) => {
  const start = performance.now();
  for (let i = 0; i < n; i += batch) {
    e.classify(e.validate({ inputs: ds.images.subarray(i * 784, (i + batch) * 784), batch, inference: batch > 1 ? { decideFrom: 'each' } : undefined }));
  }
  return (performance.now() - start) / n;
};
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(`${values.model}: ${manifest.tasks.length} tasks, kernels ${kernels.name}, ${Number(values.runs)} alternating runs of ${n} examples`);
for (const batch of [1, 128]) {
  const times: Record<string, number[]> = { 'with the rule': [], without: [] };
  for (const e of Object.values(engines)) msPerExample(e, batch); // warm-up
  for (let r = 0; r < Number(values.runs); r++) for (const [name, e] of Object.entries(engines)) times[name].push(msPerExample(e, batch));
  const [a, b] = [median(times['with the rule']), median(times.without)];
  const what = batch === 1 ? 'calls of one example' : `calls of ${batch}, each example deciding alone`;
  console.log(`${what}: ${a.toFixed(3)} ms per example with the rule, ${b.toFixed(3)} without, ratio ${(a / b).toFixed(2)}`);
}
for (const e of Object.values(engines)) e.dispose();
