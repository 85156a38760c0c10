// `supsup eval`: accuracy with the task given and inferred, task-identification accuracy and unknown-task
// detection for a model, through the serving Engine. Prints Markdown tables; --out writes the JSON report
// and --svg the curve against the number of tasks. See `supsup eval --help`.
import { BACKEND_PREFERENCES, KERNEL_PREFERENCES } from '../../platform/preferences.ts';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DECIDE_FROM, DEFAULT_EPSILON, DEFAULT_INFERENCE, DEFAULT_MAX_BATCH, DEFAULT_RERANK } from '../../contract/classify.ts';
import { DATASET_NAMES, type DatasetName, loadDataset } from '../../data/datasets.ts';
import { DEFAULT_EVAL, type EvalReport, type EvalTask, METHODS, evaluateModel, methodKey, withReranking } from '../../eval/evaluate.ts';
import { curveSvg } from '../../eval/plot.ts';
import { MANIFEST_FILE, type TaskEntry } from '../../model/manifest.ts';
import { setUnknownTaskThreshold } from '../../model/model-store.ts';
import { openEngine } from '../../runtime/open-engine.ts';
import { calibrateUnknown, calibrationEvidence, calibrationMarkdown, HELD_OUT_OFFSET, MAX_KNOWN_FLAGGED } from '../../eval/unknown-calibration.ts';
import { TRAINING_LOG } from '../../train/run.ts';
import { ConfigError, HELP_SWITCH, parseSettings, QUIET_SWITCH, refuse, type Setting, usage } from '../../platform/settings.ts';

const METHOD_FLAGS: Record<string, string> = { 'one-shot-H': 'one-shot H', 'one-shot-G': 'one-shot G', 'binary-H': 'binary H' };
const SEED_MAX = 0xffffffff;

const SETTINGS = [
  { key: 'model', flag: 'model', kind: 'string', arg: 'DIR', required: true, help: 'the model to evaluate' },
  { key: 'data', flag: 'data', kind: 'string', arg: 'NAME', choices: DATASET_NAMES, help: `${DATASET_NAMES.join(' | ')} (default: the one the model was trained on, per ${TRAINING_LOG}; else mnist)` },
  { key: 'dataDir', flag: 'data-dir', kind: 'string', arg: 'DIR', help: 'read the IDX files from DIR' },
  { key: 'tasks', flag: 'tasks', kind: 'count', arg: 'N', min: 1, help: 'evaluate a model made of the first N tasks only (default: all)' },
  { key: 'batches', flag: 'batches', kind: 'count', arg: 'N', min: 0, default: String(DEFAULT_EVAL.batches), help: 'test batches per task for the batch-level decisions' },
  { key: 'batchSize', flag: 'batch-size', kind: 'count', arg: 'N', min: 1, default: String(DEFAULT_EVAL.batchSize), help: 'examples per batch (the paper: 128)' },
  { key: 'eachExamples', flag: 'each-examples', kind: 'count', arg: 'N', min: 1, default: String(DEFAULT_EVAL.eachExamples), help: 'examples per task deciding their task alone' },
  { key: 'methods', flag: 'methods', kind: 'list', arg: 'LIST', choices: Object.keys(METHOD_FLAGS), default: Object.keys(METHOD_FLAGS).join(','), help: 'comma-separated task-inference methods (G needs s > l)' },
  {
    key: 'rerank',
    flag: 'rerank',
    kind: 'counts',
    arg: 'LIST',
    min: 1,
    default: `${DEFAULT_RERANK},1`,
    help: "comma-separated: each one-shot method once per number of the gradient's top masks re-ranked by exact forwards when deciding from one example (1: the paper's method; serve's default is " + `${DEFAULT_RERANK}); the curve follows the first`,
  },
  { key: 'decide', flag: 'decide', kind: 'list', arg: 'LIST', choices: DECIDE_FROM, default: DECIDE_FROM.join(','), help: 'comma-separated: what each decision is made from' },
  { key: 'unknownTasks', flag: 'unknown-tasks', kind: 'count', arg: 'N', min: 0, default: String(DEFAULT_EVAL.unknownTasks), help: 'permutations the model never saw, for unknown detection' },
  { key: 'unknownFrom', flag: 'unknown-from', kind: 'count', arg: 'N', min: 0, max: SEED_MAX - 100000, default: String(DEFAULT_EVAL.unknownFrom), help: 'seed of the first of those permutations' },
  { key: 'unknownBatches', flag: 'unknown-batches', kind: 'count', arg: 'N', min: 0, default: String(DEFAULT_EVAL.unknownBatches), help: 'batches of each' },
  { key: 'curve', flag: 'curve', kind: 'counts', arg: 'LIST', min: 1, default: DEFAULT_EVAL.curve.join(','), help: 'numbers of tasks for the curve, capped at the model' },
  { key: 'curveTasks', flag: 'curve-tasks', kind: 'count', arg: 'N', min: 1, default: String(DEFAULT_EVAL.curveTasks), help: 'tasks evaluated per curve point, evenly spaced' },
  { key: 'epsilon', flag: 'epsilon', kind: 'number', arg: 'X', min: 0, help: `unknown when k · max ν < 1 + X (default: the model's own, else ${DEFAULT_EPSILON}, the paper's)` },
  {
    key: 'saveEpsilon',
    flag: 'save-epsilon',
    kind: 'switch',
    help:
      "store --epsilon X in the model's manifest as its own threshold (what `supsup serve` uses unless told otherwise), with the rates " +
      'measured by this run, deciding as the service does (one-shot H from the whole batch), as the evidence; choose X on other batches first',
  },
  {
    key: 'calibrateUnknown',
    flag: 'calibrate-unknown',
    kind: 'switch',
    help:
      "instead of the full eval: choose the model's rule for a task decided from one example (best fit of the top masks below a threshold) " +
      'on --each-examples test examples per task and per unseen permutation (--unknown-tasks, seeds from --unknown-from), measure it on ' +
      `other test examples and permutations (seeds from --unknown-from + ${HELD_OUT_OFFSET}), and store it with that evidence in the manifest`,
  },
  { key: 'maxKnownFlagged', flag: 'max-known-flagged', kind: 'number', arg: 'X', min: 0, max: 1, default: String(MAX_KNOWN_FLAGGED), help: 'with --calibrate-unknown: the threshold flags at most this fraction of the known-task calibration examples' },
  { key: 'seed', flag: 'seed', kind: 'count', arg: 'N', min: 0, max: SEED_MAX, default: String(DEFAULT_EVAL.seed), help: 'shuffle seed of the test split' },
  { key: 'backend', flag: 'backend', kind: 'string', arg: 'NAME', choices: BACKEND_PREFERENCES, default: 'wasm', help: BACKEND_PREFERENCES.join(' | ') },
  { key: 'kernels', flag: 'kernels', kind: 'string', arg: 'NAME', choices: KERNEL_PREFERENCES, default: 'auto', help: KERNEL_PREFERENCES.join(' | ') },
  { key: 'out', flag: 'out', kind: 'string', arg: 'FILE', help: 'write the JSON report' },
  { key: 'svg', flag: 'svg', kind: 'string', arg: 'FILE', help: 'write the curve as SVG' },
  QUIET_SWITCH,
  HELP_SWITCH,
] as const satisfies readonly Setting[];

const USAGE = usage(
  `usage: supsup eval --model DIR [options]

Evaluates a model through the serving engine on the test split, each task's inputs made with the
transform stored in its manifest entry.`,
  SETTINGS,
);

export async function evalCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const { values } = parseSettings(SETTINGS, argv, USAGE);
  const dir = values.model;
  const data = values.data ?? trainedOn(dir) ?? 'mnist';
  const { epsilon, decide: decideFrom } = values;
  const options = {
    ...DEFAULT_EVAL,
    batches: values.batches,
    batchSize: values.batchSize,
    eachExamples: values.eachExamples,
    unknownTasks: values.unknownTasks,
    unknownFrom: values.unknownFrom,
    unknownBatches: values.unknownBatches,
    curve: values.curve,
    curveTasks: values.curveTasks,
    seed: values.seed,
    methods: withReranking(METHODS.filter((m) => values.methods.map((n) => METHOD_FLAGS[n]).includes(m.name)), [...new Set(values.rerank)]),
    decideFrom,
    onProgress: values.quiet ? undefined : (msg: string) => process.stderr.write(`${msg}\n`),
  };

  const serviceMethod = METHODS.find((m) => m.method === DEFAULT_INFERENCE.method && m.objective === DEFAULT_INFERENCE.objective)!;
  const serviceKey = methodKey(serviceMethod, DEFAULT_INFERENCE.decideFrom);
  if (values.saveEpsilon) {
    // The stored value must come with evidence for the model as served: all its tasks, the service's decision rule.
    if (epsilon === undefined) throw new ConfigError('--save-epsilon needs --epsilon X: the value to store');
    if (values.tasks !== undefined) throw new ConfigError('--save-epsilon evaluates the whole model: drop --tasks');
    if (options.unknownTasks === 0 || options.unknownBatches === 0) throw new ConfigError('--save-epsilon needs unknown tasks to measure: --unknown-tasks and --unknown-batches > 0');
    if (!options.methods.includes(serviceMethod) || !decideFrom.includes(DEFAULT_INFERENCE.decideFrom)) {
      throw new ConfigError(`--save-epsilon needs the service's decision rule in the run: --methods with one-shot-H, --rerank with 1 and --decide with ${DEFAULT_INFERENCE.decideFrom}`);
    }
  }

  if (values.calibrateUnknown) {
    if (values.saveEpsilon || values.tasks !== undefined || values.svg) throw new Error('--calibrate-unknown works on the whole model alone: drop --save-epsilon, --tasks and --svg');
    if (options.unknownTasks === 0) throw new Error('--calibrate-unknown needs unseen permutations: --unknown-tasks > 0');
    if (options.unknownFrom + HELD_OUT_OFFSET + options.unknownTasks > SEED_MAX) throw refuse('--unknown-from', `must leave room for the held-out seeds (+${HELD_OUT_OFFSET})`, String(options.unknownFrom));
  }
  const opened = await openEngine(dir, { backend: values.backend, kernels: values.kernels, maxBatch: Math.max(DEFAULT_MAX_BATCH, options.batchSize), epsilon });
  const { engine, manifest } = opened;
  try {
    const ordered = orderTasks(manifest.tasks);
    const limit = values.tasks ?? ordered.length;
    if (limit > ordered.length) throw refuse('--tasks', `must be at most ${ordered.length}, the tasks in ${dir}`, String(limit));
    for (const t of ordered.slice(limit)) engine.removeTask(t.id);
    const tasks: EvalTask[] = ordered.slice(0, limit).map((t) => ({ id: t.id, transform: t.transform }));
    if (tasks.length === 0) throw new Error(`${dir} has no tasks to evaluate`);
    const test = loadDataset(data, values.dataDir).test;
    if (values.calibrateUnknown) {
      const r = calibrateUnknown(engine, tasks, test, { examples: options.eachExamples, unknownTasks: options.unknownTasks, unknownFrom: options.unknownFrom, seed: options.seed, maxKnownFlagged: values.maxKnownFlagged, onProgress: options.onProgress });
      console.log(calibrationMarkdown(r, dir, test.name));
      const calibration = calibrationEvidence(r, test.name);
      const own = manifest.unknownTask ?? { epsilon: DEFAULT_EPSILON, calibration: "the paper's 1/8 (not calibrated for this model)" };
      await setUnknownTaskThreshold(dir, { ...own, oneExample: { ...r.rule, calibration } });
      console.log(`\nSaved the one-example rule (threshold ${r.rule.threshold}) in ${path.join(dir, MANIFEST_FILE)}: ${calibration}`);
      if (values.out) {
        await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
        await writeFile(values.out, JSON.stringify({ model: dir, data: test.name, ...r }, null, 2) + '\n');
      }
      return;
    }
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
    if (values.saveEpsilon) {
      const calibration = evidence(full, serviceMethod.name, serviceKey);
      await setUnknownTaskThreshold(dir, { ...manifest.unknownTask, epsilon: engine.limits.epsilon, calibration });
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
    const line: unknown = JSON.parse(first);
    const config = typeof line === 'object' && line !== null && 'config' in line ? line.config : undefined;
    const data = typeof config === 'object' && config !== null && 'data' in config ? config.data : undefined;
    return DATASET_NAMES.find((name) => name === data);
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
        `flagged when k · max ν < 1 + ε (decided from the first example: by the model's one-example rule when it has one). "best ε" is the threshold that would best separate these batches from the known ones ` +
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
    lines.push(`| tasks in the model | tasks evaluated | GG | GN (${r.options.methods[0]} / first) | task-id accuracy |`);
    lines.push('|---|---|---|---|---|');
    for (const c of r.curve) lines.push(`| ${c.tasks} | ${c.evaluatedTasks} | ${p(c.gg)} | ${p(c.gn)} | ${p(c.taskIdAccuracy)} |`);
    lines.push('');
  }
  lines.push(
    `Eval time: ${r.seconds.total.toFixed(1)} s (GG ${r.seconds.gg.toFixed(1)} s, GN ${r.seconds.gn.toFixed(1)} s, unknown ${r.seconds.unknown.toFixed(1)} s, curve ${r.seconds.curve.toFixed(1)} s).`,
  );
  return lines.join('\n');
}
