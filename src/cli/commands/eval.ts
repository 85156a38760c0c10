// `supsup eval`: accuracy with the task given and inferred, task-identification accuracy and unknown-task
// detection for a model, through the serving Engine. Prints Markdown tables; --out writes the JSON report
// and --svg the curve against the number of tasks. See `supsup eval --help`.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DECIDE_FROM, type DecideFrom, DEFAULT_EPSILON, DEFAULT_INFERENCE, DEFAULT_MAX_BATCH } from '../../contract/classify.ts';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../../data/datasets.ts';
import { DEFAULT_EVAL, type EvalReport, type EvalTask, METHODS, evaluateModel, methodKey } from '../../eval/evaluate.ts';
import { curveSvg } from '../../eval/plot.ts';
import { MANIFEST_FILE, type TaskEntry } from '../../model/manifest.ts';
import { setUnknownTaskThreshold } from '../../model/model-store.ts';
import { BACKEND_PREFERENCES, type BackendPreference } from '../../platform/backend.ts';
import { KERNEL_PREFERENCES, type KernelPreference } from '../../platform/kernels.ts';
import { openEngine } from '../../runtime/open-engine.ts';
import { TRAINING_LOG } from '../../train/run.ts';
import { COMMON_SWITCHES, int, list, number, oneOf, parseFlags, required, stringFlags } from '../flags.ts';

const METHOD_FLAGS: Record<string, string> = { 'one-shot-H': 'one-shot H', 'one-shot-G': 'one-shot G', 'binary-H': 'binary H' };

const USAGE = `usage: supsup eval --model DIR [options]

Evaluates a model through the serving engine on the test split, each task's inputs made with the
transform stored in its manifest entry.

  --data NAME          ${DATASET_NAMES.join(' | ')} (default: the one the model was trained on, per ${TRAINING_LOG}; else mnist)
  --data-dir DIR       read the IDX files from DIR
  --tasks N            evaluate a model made of the first N tasks only (default: all)
  --batches N          test batches per task for the batch-level decisions (default ${DEFAULT_EVAL.batches})
  --batch-size N       examples per batch (default ${DEFAULT_EVAL.batchSize}, as the paper)
  --each-examples N    examples per task deciding their task alone (default ${DEFAULT_EVAL.eachExamples})
  --methods LIST       comma-separated of ${Object.keys(METHOD_FLAGS).join(', ')} (default all; G needs s > l)
  --decide LIST        comma-separated of ${DECIDE_FROM.join(', ')} (default all)
  --unknown-tasks N    permutations the model never saw, for unknown detection (default ${DEFAULT_EVAL.unknownTasks})
  --unknown-from N     seed of the first of those permutations (default ${DEFAULT_EVAL.unknownFrom})
  --unknown-batches N  batches of each (default ${DEFAULT_EVAL.unknownBatches})
  --curve LIST         numbers of tasks for the curve (default ${DEFAULT_EVAL.curve.join(',')}, capped at the model)
  --curve-tasks N      tasks evaluated per curve point, evenly spaced (default ${DEFAULT_EVAL.curveTasks})
  --epsilon X          unknown when k · max ν < 1 + X (default: the model's own, else ${DEFAULT_EPSILON}, the paper's)
  --save-epsilon       store --epsilon X in the model's manifest as its own threshold (what \`supsup serve\` uses
                       unless told otherwise), with the rates measured by this run, deciding as the service does
                       (one-shot H from the whole batch), as the evidence; choose X on other batches first
  --seed N             shuffle seed of the test split (default ${DEFAULT_EVAL.seed})
  --backend NAME       ${BACKEND_PREFERENCES.join(' | ')} (default wasm)
  --kernels NAME       auto | native | typescript (default auto)
  --out FILE           write the JSON report
  --svg FILE           write the curve as SVG
  --quiet              no progress lines
  --help`;

export async function evalCommand(argv: string[]): Promise<void> {
  const values = parseFlags(
    argv,
    {
      ...stringFlags(
        'model', 'data', 'data-dir', 'tasks', 'batches', 'batch-size', 'each-examples', 'methods', 'decide',
        'unknown-tasks', 'unknown-from', 'unknown-batches', 'curve', 'curve-tasks', 'epsilon', 'seed', 'backend', 'kernels',
        'out', 'svg',
      ),
      'save-epsilon': { type: 'boolean' },
      ...COMMON_SWITCHES,
    },
    USAGE,
  );
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const dir = required(values.model, '--model DIR', USAGE);
  const data = oneOf<DatasetName>('--data', values.data ?? trainedOn(dir) ?? 'mnist', DATASET_NAMES);
  const backend = oneOf<BackendPreference>('--backend', values.backend ?? 'wasm', BACKEND_PREFERENCES);
  const kernels = oneOf<KernelPreference>('--kernels', values.kernels ?? 'auto', KERNEL_PREFERENCES);
  const methodNames = list('--methods', values.methods, Object.keys(METHOD_FLAGS));
  const decideFrom = list<DecideFrom>('--decide', values.decide, DECIDE_FROM);
  const epsilon = values.epsilon === undefined ? undefined : number('--epsilon', values.epsilon, { allowZero: true });
  const curve = values.curve === undefined ? DEFAULT_EVAL.curve : values.curve.split(',').map((v) => int('--curve', v.trim(), 1));
  const options = {
    ...DEFAULT_EVAL,
    batches: int('--batches', values.batches ?? String(DEFAULT_EVAL.batches), 0),
    batchSize: int('--batch-size', values['batch-size'] ?? String(DEFAULT_EVAL.batchSize), 1),
    eachExamples: int('--each-examples', values['each-examples'] ?? String(DEFAULT_EVAL.eachExamples), 1),
    unknownTasks: int('--unknown-tasks', values['unknown-tasks'] ?? String(DEFAULT_EVAL.unknownTasks), 0),
    unknownFrom: int('--unknown-from', values['unknown-from'] ?? String(DEFAULT_EVAL.unknownFrom), 0, 0xffffffff - 100000),
    unknownBatches: int('--unknown-batches', values['unknown-batches'] ?? String(DEFAULT_EVAL.unknownBatches), 0),
    curve,
    curveTasks: int('--curve-tasks', values['curve-tasks'] ?? String(DEFAULT_EVAL.curveTasks), 1),
    seed: int('--seed', values.seed ?? String(DEFAULT_EVAL.seed), 0, 0xffffffff),
    methods: METHODS.filter((m) => methodNames.map((n) => METHOD_FLAGS[n]).includes(m.name)),
    decideFrom,
    onProgress: values.quiet ? undefined : (msg: string) => process.stderr.write(`${msg}\n`),
  };

  const serviceMethod = METHODS.find((m) => m.method === DEFAULT_INFERENCE.method && m.objective === DEFAULT_INFERENCE.objective)!;
  const serviceKey = methodKey(serviceMethod, DEFAULT_INFERENCE.decideFrom);
  if (values['save-epsilon']) {
    // The stored value must come with evidence for the model as served: all its tasks, the service's decision rule.
    if (epsilon === undefined) throw new Error('--save-epsilon needs --epsilon X: the value to store');
    if (values.tasks !== undefined) throw new Error('--save-epsilon evaluates the whole model: drop --tasks');
    if (options.unknownTasks === 0 || options.unknownBatches === 0) throw new Error('--save-epsilon needs unknown tasks to measure: --unknown-tasks and --unknown-batches > 0');
    if (!options.methods.includes(serviceMethod) || !decideFrom.includes(DEFAULT_INFERENCE.decideFrom)) {
      throw new Error(`--save-epsilon needs the service's decision rule in the run: --methods with one-shot-H and --decide with ${DEFAULT_INFERENCE.decideFrom}`);
    }
  }

  const opened = await openEngine(dir, { backend, kernels, maxBatch: Math.max(DEFAULT_MAX_BATCH, options.batchSize), epsilon });
  const { engine, manifest } = opened;
  try {
    const ordered = orderTasks(manifest.tasks);
    const limit = values.tasks === undefined ? ordered.length : int('--tasks', values.tasks, 1, ordered.length);
    for (const t of ordered.slice(limit)) engine.removeTask(t.id);
    const tasks: EvalTask[] = ordered.slice(0, limit).map((t) => ({ id: t.id, transform: t.transform }));
    if (tasks.length === 0) throw new Error(`${dir} has no tasks to evaluate`);
    const test = loadDataset(data, values['data-dir']).test;
    if (!values.quiet) {
      process.stderr.write(`${dir}: ${tasks.length} tasks on ${test.name}; backend ${opened.backend.name}, kernels ${opened.kernels.name}\n`);
    }
    const report = evaluateModel(engine, tasks, test, options);
    const full = {
      model: dir,
      data: test.name,
      backend: opened.backend.name,
      kernels: opened.kernels.name,
      epsilon: engine.limits.epsilon,
      ...report,
    };
    console.log(markdownSummary(full));
    if (values['save-epsilon']) {
      const calibration = evidence(full, serviceMethod.name, serviceKey);
      await setUnknownTaskThreshold(dir, { epsilon: engine.limits.epsilon, calibration });
      console.log(`\nSaved ε = ${engine.limits.epsilon} in ${path.join(dir, MANIFEST_FILE)}: ${calibration}`);
    }
    if (values.out) {
      await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
      await writeFile(values.out, JSON.stringify(full, null, 2) + '\n');
    }
    if (values.svg) {
      await mkdir(path.dirname(path.resolve(values.svg)), { recursive: true });
      const main = report.options.methods[0] ?? 'one-shot H';
      await writeFile(
        values.svg,
        curveSvg(report.curve, { title: `${path.basename(path.resolve(dir))} (${test.name})`, gnLabel: `task inferred (${main}, first example of 128)` }),
      );
    }
  } finally {
    engine.dispose();
  }
}

/** One line of evidence for a saved ε: what this run measured at it, deciding as the service does (`key`). */
function evidence(r: EvalReport & { data: string; epsilon: number }, method: string, key: string): string {
  const p = (x: number) => `${(100 * x).toFixed(2)}%`;
  const known = r.gn[key], unknown = r.unknown.flagged[key];
  const when = new Date().toISOString().slice(0, 10);
  return (
    `supsup eval ${when} on ${r.data}, ${r.tasks} tasks, ${method} from the whole batch of ${r.options.batchSize}: ` +
    `${p(unknown.rate)} of ${unknown.decisions} batches of ${r.unknown.tasks} unseen tasks (seeds from ${r.unknown.from}) flagged unknown, ` +
    `${p(known.unknownRate)} of ${known.decisions} known-task batches flagged`
  );
}

/** The dataset the model's tasks were trained on, from the first line of its training log. */
function trainedOn(dir: string): DatasetName | undefined {
  const file = path.join(dir, TRAINING_LOG);
  if (!existsSync(file)) return undefined;
  try {
    const first = readFileSync(file, 'utf8').split('\n')[0];
    const data = (JSON.parse(first) as { config?: { data?: string } }).config?.data;
    return DATASET_NAMES.includes(data as DatasetName) ? (data as DatasetName) : undefined;
  } catch {
    return undefined;
  }
}

/** Tasks in the order of the trailing integer of their ids (task 0, 1, 2 … of a family), else manifest order. */
export function orderTasks(tasks: TaskEntry[]): TaskEntry[] {
  const num = (id: string) => {
    const m = /-(\d+)$/.exec(id);
    return m ? Number(m[1]) : Infinity;
  };
  return tasks
    .map((t, i) => ({ t, i }))
    .sort((a, b) => num(a.t.id) - num(b.t.id) || a.i - b.i)
    .map(({ t }) => t);
}

export function markdownSummary(r: EvalReport & { model: string; data: string; epsilon: number }): string {
  const p = (x: number) => `${(100 * x).toFixed(2)}%`;
  const lines: string[] = [];
  lines.push(`### ${r.model}: ${r.tasks} tasks, ${r.architecture}, ${r.data}`);
  lines.push('');
  lines.push(`Task given (GG): **${p(r.gg.accuracy)}** on ${r.gg.examples} test examples (${p(r.gg.accuracyOnBatches)} on the GN batches below).`);
  lines.push('');
  lines.push('| task inferred by | decided from | accuracy (GN) | task-id accuracy | known flagged unknown | decisions | ms per call |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const [key, s] of Object.entries(r.gn)) {
    const [method, from] = key.split(' / ');
    const what = from === 'first' ? `first example of each ${r.options.batchSize}` : from === 'batch' ? `whole batch of ${r.options.batchSize}` : 'each example';
    lines.push(`| ${method} | ${what} | ${p(s.accuracy)} | ${p(s.taskIdAccuracy)} | ${p(s.unknownRate)} | ${s.decisions} | ${s.msPerCall.toFixed(1)} |`);
  }
  lines.push('');
  if (Object.keys(r.unknown.flagged).length > 0) {
    lines.push(
      `Unknown tasks (${r.unknown.tasks} permutations not in the model, seeds from ${r.unknown.from}, ${r.unknown.batches} batches each), ` +
        `flagged when k · max ν < 1 + ε. "best ε" is the threshold that would best separate these batches from the known ones ` +
        `above (chosen in-sample, so optimistic); k · ν quartiles show how far apart the two are.`,
    );
    lines.push('');
    lines.push(`| method | decided from | unknown flagged at ε = ${r.epsilon} | known flagged at ε = ${r.epsilon} | batches | best ε | unknown / known flagged at best ε | k·ν quartiles known | k·ν quartiles unknown |`);
    lines.push('|---|---|---|---|---|---|---|---|---|');
    const q = (a: number[]) => a.map((v) => v.toFixed(2)).join(' / ');
    for (const [key, u] of Object.entries(r.unknown.flagged)) {
      const [method, from] = key.split(' / ');
      const c = u.calibration;
      lines.push(
        `| ${method} | ${from} | ${p(u.rate)} | ${p(r.gn[key]?.unknownRate ?? 0)} | ${u.decisions} | ${c.epsilon.toPrecision(3)} | ` +
          `${p(c.unknownFlagged)} / ${p(c.knownFlagged)} | ${q(c.known)} | ${q(c.unknown)} |`,
      );
    }
    lines.push('');
  }
  if (r.curve.length > 0) {
    lines.push(`| tasks in the model | tasks evaluated | GG | GN (${methodKey({ name: r.options.methods[0], method: 'one-shot', objective: 'entropy' }, 'first')}) | task-id accuracy |`);
    lines.push('|---|---|---|---|---|');
    for (const c of r.curve) lines.push(`| ${c.tasks} | ${c.evaluatedTasks} | ${p(c.gg)} | ${p(c.gn)} | ${p(c.taskIdAccuracy)} |`);
    lines.push('');
  }
  lines.push(
    `Eval time: ${r.seconds.total.toFixed(1)} s (GG ${r.seconds.gg.toFixed(1)} s, GN ${r.seconds.gn.toFixed(1)} s, unknown ${r.seconds.unknown.toFixed(1)} s, curve ${r.seconds.curve.toFixed(1)} s).`,
  );
  return lines.join('\n');
}
