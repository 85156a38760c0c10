// What re-ranking a task decided from one example costs (core/one-example.ts): ms per example of classify calls
// that infer the task one-shot H from one example (calls of 1) or per example (one call of all the examples,
// decideFrom each),
// for rerank 1, 2, 4, 8 (InferenceOptions.rerank), alternating case after case, medians. The served default's
// masks (k = 250) and the same masks stored ten times over (k = 2500: the gradient pass grows with k, the exact
// forwards do not). Each with the model's one-example unknown rule (as served: its 4 forwards are the ones
// rerank 4 shares) and without it (the paper's plain one-shot is rerank 1 without the rule). Run it under
// /work/wt/quiet.sh on the shared machine.
//
//   node --import tsx bench/one-example-rerank.ts [--model models/permuted-mnist60k-lenet-lr3e-4] [--runs 5] [--examples 64]
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Engine } from '../src/core/engine.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { loadModel } from '../src/model/model-store.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { selectKernels } from '../src/platform/kernels.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/permuted-mnist60k-lenet-lr3e-4' },
    runs: { type: 'string', default: '5' },
    examples: { type: 'string', default: '64' },
  },
});
const runs = Number(values.runs), n = Number(values.examples);
await selectBackend('wasm');
const { kernels } = selectKernels('auto');
const { manifest, masks } = await loadModel(values.model);
const rule = manifest.unknownTask?.oneExample;
const RERANK = [1, 2, 4, 8];
let forwardMs = NaN;

const test = loadDataset('mnist').test;
const ds = taskDataset(manifest.tasks[17].transform, { ...test, images: test.images.subarray(0, n * 784), labels: test.labels.subarray(0, n), count: n });
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];

console.log(`${values.model}: kernels ${kernels.name}, ${runs} alternating runs of ${n} examples; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('| k | unknown rule | calls | ' + RERANK.map((r) => `rerank ${r}`).join(' | ') + ' | rerank 4 / rerank 1 |');
console.log('|---|---|---|' + RERANK.map(() => '---|').join('') + '---|');
for (const copies of [1, 10]) {
  for (const oneExample of rule ? [rule, undefined] : [undefined]) {
    const engine = new Engine({ ...manifest, kernels, expectedTasks: manifest.tasks.length * copies, oneExample });
    for (let c = 0; c < copies; c++) for (const t of manifest.tasks) engine.addTask(c ? `${t.id}-copy${c}` : t.id, masks.get(t.id)!);
    for (const batch of [1, n]) {
      const msPerExample = (rerank: number) => {
        const start = performance.now();
        for (let i = 0; i < n; i += batch) {
          const call = engine.validate({ inputs: ds.images.subarray(i * 784, (i + batch) * 784), batch, inference: { decideFrom: batch > 1 ? 'each' : 'first' } });
          call.inference.rerank = rerank;
          engine.classify(call);
        }
        return (performance.now() - start) / n;
      };
      const times = new Map(RERANK.map((r) => [r, [] as number[]]));
      for (const r of RERANK) msPerExample(r); // warm-up
      for (let run = 0; run < runs; run++) for (const r of RERANK) times.get(r)!.push(msPerExample(r));
      const ms = RERANK.map((r) => median(times.get(r)!));
      const calls = batch === 1 ? 'one example' : `${batch}, each alone`;
      console.log(`| ${engine.taskCount} | ${oneExample ? `yes (${oneExample.candidates} masks)` : 'no'} | ${calls} | ${ms.map((m) => m.toFixed(3)).join(' | ')} | ${(ms[2] / ms[0]).toFixed(2)} |`);
    }
    if (copies === 1 && oneExample === undefined) forwardMs = givenMs(engine);
    engine.dispose();
  }
}
/** The unit the forwards are paid in: a given-task call of one example is one exact forward (and its softmax). */
function givenMs(engine: Engine): number {
  const id = manifest.tasks[17].id;
  const pass = () => {
    const start = performance.now();
    for (let i = 0; i < n; i++) engine.classify(engine.validate({ inputs: ds.images.subarray(i * 784, (i + 1) * 784), batch: 1, task: id }));
    return (performance.now() - start) / n;
  };
  pass();
  return median(Array.from({ length: runs }, pass));
}
console.log(`given task, one example (one exact forward): ${forwardMs.toFixed(3)} ms per call`);
console.log(`ms per example (medians); load after: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
