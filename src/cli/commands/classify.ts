import { readFile } from 'node:fs/promises';
import { DATASET_NAMES, loadDataset } from '../../data/datasets.ts';
import { BACKEND_PREFERENCES } from '../../platform/backend.ts';
import { taskDataset } from '../../data/transforms.ts';
import { openEngine } from '../../runtime/open-engine.ts';
import { DEFAULT_MODEL_DIRS, defaultModelDir } from '../../runtime/default-model.ts';
import { COMMON_SWITCHES, int, oneOf, parseFlags, stringFlags } from '../flags.ts';

const HELP = `usage: supsup classify [--model DIR] [--input FILE | --dataset mnist|fashion-mnist --examples N --from-task ID]
                        [--task ID] [--method one-shot|binary] [--objective entropy|superfluous]
                        [--decide-from first|batch|each] [--backend auto|cuda|wasm|cpu|tensorflow] [--json]

Classifies a batch with a given task (--task) or with the task inferred (no --task).
  --input FILE      JSON {"inputs": number[][]}: examples as the task's data gives them (pixels in [0,1])
  --dataset NAME    take test examples from a bundled data set instead, transformed as task --from-task
                    (default: the model's first task) defines, and print the expected label and task`;

export async function classifyCommand(argv: string[]): Promise<void> {
  const values = parseFlags(
    argv,
    {
      ...stringFlags('model', 'input', 'dataset', 'examples', 'from-task', 'task', 'method', 'objective', 'decide-from', 'backend'),
      json: { type: 'boolean' },
      help: COMMON_SWITCHES.help,
    },
    HELP,
  );
  if (values.help) return void console.log(HELP);
  const model = values.model ?? defaultModelDir();
  if (model === undefined) throw new Error(`no --model given and none of the bundled models (${DEFAULT_MODEL_DIRS.join(', ')}) exists`);
  const opened = await openEngine(model, { backend: oneOf('--backend', values.backend ?? 'auto', BACKEND_PREFERENCES) });
  const { engine, manifest } = opened;
  let inputs: Float32Array;
  let expected: { label: number; task: string }[] | undefined;
  if (values.input !== undefined) {
    const parsed = JSON.parse(await readFile(values.input, 'utf8')) as { inputs?: unknown };
    if (!Array.isArray(parsed.inputs) || !parsed.inputs.every(Array.isArray)) throw new Error(`${values.input}: expected {"inputs": number[][]}`);
    inputs = Float32Array.from((parsed.inputs as number[][]).flat());
  } else {
    const name = oneOf('--dataset', values.dataset ?? 'mnist', DATASET_NAMES);
    const source = manifest.tasks.find((t) => t.id === (values['from-task'] ?? manifest.tasks[0]?.id));
    if (!source) throw new Error(`--from-task: no such task in ${model}`);
    const n = int('--examples', values.examples ?? '8', 1);
    const data = taskDataset(source.transform, loadDataset(name).test);
    // Evenly spaced through the test split, so a few examples come from all over it.
    const picks = Array.from({ length: Math.min(n, data.count) }, (_, i) => Math.floor((i * data.count) / Math.min(n, data.count)));
    const size = engine.architecture.inputSize;
    inputs = new Float32Array(picks.length * size);
    picks.forEach((p, i) => inputs.set(data.images.subarray(p * size, (p + 1) * size), i * size));
    expected = picks.map((p) => ({ label: data.labels[p], task: source.id }));
  }
  const batch = inputs.length / engine.architecture.inputSize;
  const inference = Object.fromEntries(
    Object.entries({ method: values.method, objective: values.objective, decideFrom: values['decide-from'] }).filter(([, v]) => v !== undefined),
  );
  const call = engine.validate({ inputs, batch: Number.isInteger(batch) ? batch : -1, task: values.task, inference });
  const predictions = engine.classify(call);
  if (values.json) return void console.log(JSON.stringify({ predictions }, null, 2));
  console.error(`model ${model}: ${manifest.tasks.length} tasks; backend ${opened.backend.name}; kernels ${opened.kernels.name}`);
  const rows = predictions.map((p, i) => {
    const e = expected?.[i];
    const mark = e ? (e.label === p.label && e.task === p.task.id ? 'ok' : 'MISS') : '';
    return [i, p.label, p.probabilities[p.label].toFixed(3), p.task.id, p.task.inferred ? 'inferred' : 'given', p.task.confidence.toFixed(3), p.task.unknown ? 'yes' : 'no', e ? `${e.label}/${e.task}` : '', mark];
  });
  printTable(['#', 'label', 'p', 'task', 'how', 'confidence', 'unknown', 'expected', ''], rows);
  engine.dispose();
}

function printTable(header: string[], rows: (string | number)[][]): void {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  for (const r of all) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd());
}
