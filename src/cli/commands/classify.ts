import { BACKEND_PREFERENCES } from '../../platform/preferences.ts';
import { readFile } from 'node:fs/promises';
import { DATASET_NAMES, loadDataset } from '../../data/datasets.ts';
import { taskDataset } from '../../data/transforms.ts';
import { openEngine } from '../../runtime/open-engine.ts';
import { DEFAULT_MODEL_DIRS, defaultModelDir } from '../../runtime/default-model.ts';
import { DECIDE_FROM, DEFAULT_INFERENCE, INFERENCE_METHODS, OBJECTIVES } from '../../contract/classify.ts';
import { ConfigError, HELP_SWITCH, parseSettings, refuse, type Setting, usage } from '../../platform/settings.ts';

const SETTINGS = [
  { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', help: `the model (default: the first of ${DEFAULT_MODEL_DIRS.join(', ')} that exists)` },
  { key: 'input', flag: 'input', kind: 'string', arg: 'FILE', help: 'JSON {"inputs": number[][]}: examples as the task\'s data gives them (pixels in [0,1])' },
  {
    key: 'dataset',
    flag: 'dataset',
    kind: 'string',
    arg: 'NAME',
    choices: DATASET_NAMES,
    default: 'mnist',
    help: 'without --input: take test examples from this bundled data set, transformed as task --from-task defines, and print the expected label and task',
  },
  { key: 'examples', flag: 'examples', kind: 'count', arg: 'N', min: 1, default: '8', help: 'how many test examples, evenly spaced through the test split' },
  { key: 'fromTask', flag: 'from-task', kind: 'string', arg: 'ID', help: "the task whose transform makes the examples (default: the model's first task)" },
  { key: 'task', flag: 'task', kind: 'string', arg: 'ID', help: 'classify with this task (default: infer the task)' },
  { key: 'method', flag: 'method', kind: 'string', arg: 'NAME', choices: INFERENCE_METHODS, help: `task inference: ${INFERENCE_METHODS.join(' | ')} (default ${DEFAULT_INFERENCE.method})` },
  { key: 'objective', flag: 'objective', kind: 'string', arg: 'NAME', choices: OBJECTIVES, help: `${OBJECTIVES.join(' | ')} (default ${DEFAULT_INFERENCE.objective})` },
  { key: 'decideFrom', flag: 'decide-from', kind: 'string', arg: 'WHAT', choices: DECIDE_FROM, help: `${DECIDE_FROM.join(' | ')} (default ${DEFAULT_INFERENCE.decideFrom})` },
  { key: 'backend', flag: 'backend', kind: 'string', arg: 'NAME', choices: BACKEND_PREFERENCES, default: 'auto', help: BACKEND_PREFERENCES.join(' | ') },
  { key: 'json', flag: 'json', kind: 'switch', help: 'print the predictions as JSON' },
  HELP_SWITCH,
] as const satisfies readonly Setting[];

const USAGE = usage(
  `usage: supsup classify [--model DIR] [--input FILE | --dataset NAME --examples N --from-task ID] [--task ID] [options]

Classifies a batch with a given task (--task) or with the task inferred (no --task).`,
  SETTINGS,
);

export async function classifyCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const { values } = parseSettings(SETTINGS, argv, USAGE);
  const model = values.model ?? defaultModelDir();
  if (model === undefined) throw new ConfigError(`no --model given and none of the bundled models (${DEFAULT_MODEL_DIRS.join(', ')}) exists`);
  const opened = await openEngine(model, { backend: values.backend });
  const { engine, manifest } = opened;
  let inputs: Float32Array;
  let expected: { label: number; task: string }[] | undefined;
  if (values.input !== undefined) {
    const parsed: unknown = JSON.parse(await readFile(values.input, 'utf8'));
    const rows = typeof parsed === 'object' && parsed !== null && 'inputs' in parsed ? parsed.inputs : undefined;
    if (!Array.isArray(rows) || !rows.every(Array.isArray)) throw new Error(`${values.input}: expected {"inputs": number[][]}`);
    inputs = Float32Array.from(rows.flat());
  } else {
    const fromTask = values.fromTask ?? manifest.tasks[0]?.id;
    const source = manifest.tasks.find((t) => t.id === fromTask);
    if (!source) throw refuse('--from-task', `must name a task of ${model}`, fromTask ?? '');
    const n = values.examples;
    const data = taskDataset(source.transform, loadDataset(values.dataset).test);
    // Evenly spaced through the test split: the same examples every run (the standard MNIST test split is not
    // ordered by class, so a few examples need not cover every class).
    const picks = Array.from({ length: Math.min(n, data.count) }, (_, i) => Math.floor((i * data.count) / Math.min(n, data.count)));
    const size = engine.architecture.inputSize;
    inputs = new Float32Array(picks.length * size);
    picks.forEach((p, i) => inputs.set(data.images.subarray(p * size, (p + 1) * size), i * size));
    expected = picks.map((p) => ({ label: data.labels[p], task: source.id }));
  }
  const batch = inputs.length / engine.architecture.inputSize;
  // Only the options given: the engine fills in the rest (DEFAULT_INFERENCE).
  const { method, objective, decideFrom } = values;
  const inference = { ...(method && { method }), ...(objective && { objective }), ...(decideFrom && { decideFrom }) };
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
