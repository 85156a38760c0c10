// Evaluation of a model through the Engine (the serving path): for every task, accuracy with the task
// given (GG) and with the task inferred (GN) by each inference method, deciding from the first example of
// each batch, from the whole batch, or per example; the task-identification accuracy of each; how often
// batches of tasks the model has never seen are flagged unknown, and how often known ones are wrongly
// flagged; and the curve of these against the number of tasks in the model.
//
// Data: each task's inputs are the test split with the task's stored transform applied (the manifest's
// explicit permutation, angle or class pair), so the evaluation needs nothing but the model and the data.
// Batches are drawn from a seeded shuffle of the test split, one per task (MNIST's split is ordered by digit).
import { type Engine } from '../core/engine.ts';
import { type DecideFrom, DEFAULT_MAX_BATCH, type InferenceMethod, type Objective } from '../contract/classify.ts';
import { type Dataset } from '../data/datasets.ts';
import { type TaskTransform, permutedTask, taskDataset } from '../data/transforms.ts';
import { deriveSeed, shuffledIndices } from '../core/prng.ts';

export interface MethodSpec {
  /** e.g. "one-shot H". */
  name: string;
  method: InferenceMethod;
  objective: Objective;
  /** InferenceOptions.rerank of its calls: 1 for the paper's methods. */
  rerank: number;
}

/** The paper's methods. */
export const METHODS: MethodSpec[] = [
  { name: 'one-shot H', method: 'one-shot', objective: 'entropy', rerank: 1 },
  { name: 'one-shot G', method: 'one-shot', objective: 'superfluous', rerank: 1 },
  { name: 'binary H', method: 'binary', objective: 'entropy', rerank: 1 },
];

/**
 * Each one-shot method once per number of masks re-ranked from one example (`rerank`, in that order; 1 is the
 * method as the paper has it), binary ones once: "one-shot H, top 4 re-ranked".
 */
export function withReranking(methods: MethodSpec[], rerank: number[]): MethodSpec[] {
  return methods.flatMap((m) =>
    m.method === 'one-shot' ? rerank.map((r) => (r === 1 ? m : { ...m, name: `${m.name}, top ${r} re-ranked`, rerank: r })) : [m],
  );
}

/** Whether `m` is evaluated deciding from `d`: re-ranking only changes decisions made from one example, so a whole batch's is the plain method's. */
function evaluatedFrom(m: MethodSpec, d: DecideFrom): boolean {
  return !(d === 'batch' && m.rerank > 1);
}

export interface EvalTask {
  id: string;
  transform: TaskTransform;
}

export interface EvalOptions {
  /** Test batches per task for the batch-level decisions (first, batch). */
  batches: number;
  /** Examples per batch (the paper: 128). */
  batchSize: number;
  /** Examples per task for per-example decisions (each example decides alone). */
  eachExamples: number;
  /** Tasks not in the model for the unknown-task test (permutations from seed `unknownFrom`), and batches of each. */
  unknownTasks: number;
  unknownFrom: number;
  unknownBatches: number;
  /** Numbers of tasks at which to draw the curve (points above the model's task count are dropped). */
  curve: number[];
  /** At most this many tasks are evaluated at each curve point (evenly spaced among the first n). */
  curveTasks: number;
  /** Shuffle seed of the test split. */
  seed: number;
  /** Methods to run (those needing superfluous outputs are skipped when s = l). */
  methods: MethodSpec[];
  decideFrom: DecideFrom[];
  onProgress?: (message: string) => void;
}

export const DEFAULT_EVAL: Omit<EvalOptions, 'onProgress'> = {
  batches: 4,
  batchSize: 128,
  eachExamples: 16,
  unknownTasks: 20,
  unknownFrom: 1_000_000,
  unknownBatches: 4,
  curve: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500],
  curveTasks: 20,
  seed: 1,
  methods: METHODS,
  decideFrom: ['first', 'batch', 'each'],
};

/** Accuracy over examples, task-id accuracy and unknown flags over decisions (batches, or examples for `each`). */
export interface Score {
  examples: number;
  correct: number;
  decisions: number;
  taskCorrect: number;
  flaggedUnknown: number;
  /** k · ν of the chosen task, per decision: the statistic the unknown test compares with 1 + ε. */
  margins: number[];
  /** Wall time of the classify calls. */
  ms: number;
}

export interface ScoreSummary {
  accuracy: number;
  taskIdAccuracy: number;
  /** Fraction of decisions on known tasks flagged unknown (false unknowns). */
  unknownRate: number;
  examples: number;
  decisions: number;
  msPerCall: number;
}

export interface TaskResult {
  id: string;
  gg: number;
  ggExamples: number;
  /** GG on exactly the examples of the GN batches, for a like-for-like gap. */
  ggOnBatches: number;
  gn: Record<string, ScoreSummary>;
}

export interface CurvePoint {
  tasks: number;
  evaluatedTasks: number;
  gg: number;
  gn: number;
  taskIdAccuracy: number;
  unknownRate: number;
}

export interface EvalReport {
  tasks: number;
  architecture: string;
  options: Omit<EvalOptions, 'onProgress' | 'methods'> & { methods: string[] };
  gg: { accuracy: number; examples: number; accuracyOnBatches: number };
  /** Key: "<method> / <decideFrom>", e.g. "one-shot H / first". */
  gn: Record<string, ScoreSummary>;
  unknown: { tasks: number; from: number; batches: number; flagged: Record<string, UnknownSummary> };
  perTask: TaskResult[];
  curve: CurvePoint[];
  seconds: { total: number; gg: number; gn: number; unknown: number; curve: number };
}

export interface UnknownSummary {
  /** Fraction of unknown-task decisions flagged unknown at the engine's ε. */
  rate: number;
  decisions: number;
  /** The ε that would best separate these decisions from the known-task ones (in-sample; see calibrate). */
  calibration: Calibration;
}

export interface Calibration {
  epsilon: number;
  unknownFlagged: number;
  knownFlagged: number;
  /** Quartiles of k · ν over known-task and unknown-task decisions. */
  known: [number, number, number];
  unknown: [number, number, number];
}

export function methodKey(m: MethodSpec, d: DecideFrom): string {
  return `${m.name} / ${d}`;
}

/**
 * Evaluates `engine` (which must hold exactly `tasks`, in this order) on `test`, in three phases: every known
 * task (GG and GN), tasks the model never learned (unknown detection), and the curve. The curve removes tasks
 * from the engine as it goes down to smaller n: the engine is left holding the first min(curve) tasks.
 */
export function evaluateModel(engine: Engine, tasks: EvalTask[], test: Dataset, options: EvalOptions): EvalReport {
  const t0 = performance.now();
  const arch = engine.architecture;
  if (test.width * test.height !== arch.inputSize) {
    throw new Error(`${test.name} has ${test.width * test.height} pixels per image, the model takes ${arch.inputSize}`);
  }
  const run = new EvalRun(engine, test, options);
  const known = timed(() => knownTasks(run, tasks));
  const unknown = timed(() => unknownTasks(run, tasks, known.result.totals));
  const curve = timed(() => curveOverTasks(run, tasks));
  const { perTask, totals, gg } = known.result;
  return {
    tasks: tasks.length,
    architecture: [arch.inputSize, ...arch.hidden, arch.outputs].join('-'),
    options: { ...stripCallbacks(options), methods: run.methods.map((m) => m.name) },
    gg,
    gn: mapValues(totals, summarize),
    unknown: { tasks: options.unknownTasks, from: options.unknownFrom, batches: options.unknownBatches, flagged: unknown.result },
    perTask,
    curve: curve.result,
    seconds: {
      total: (performance.now() - t0) / 1000,
      gg: known.result.ggMs / 1000,
      gn: known.result.gnMs / 1000,
      unknown: unknown.ms / 1000,
      curve: curve.ms / 1000,
    },
  };
}

/** What every phase shares: the engine, the test split, the batch geometry, and the calls it makes. */
class EvalRun {
  readonly pixels: number;
  readonly methods: MethodSpec[];
  readonly batchSize: number;
  readonly batches: number;
  readonly eachExamples: number;
  readonly log: (message: string) => void;
  private readonly orders = new Map<string, Uint32Array>();

  constructor(
    readonly engine: Engine,
    readonly test: Dataset,
    readonly options: EvalOptions,
  ) {
    const arch = engine.architecture;
    const hasSuperfluous = arch.outputs > arch.classes;
    this.methods = options.methods.filter((m) => hasSuperfluous || m.objective !== 'superfluous');
    this.pixels = arch.inputSize;
    this.batchSize = Math.min(options.batchSize, test.count);
    this.batches = Math.min(options.batches, Math.floor(test.count / this.batchSize));
    this.eachExamples = Math.min(options.eachExamples, test.count);
    this.log = options.onProgress ?? (() => undefined);
  }

  /**
   * Stream `stream`'s own shuffle of the test split: with one shared order, the "first example" of batch b
   * would be the same image for every task, and a few hard images would decide the score.
   */
  order(stream: number, count = this.test.count): Uint32Array {
    // A split task holds only its classes' examples: its order runs over those, not the whole test split.
    const key = `${stream}/${count}`;
    let o = this.orders.get(key);
    if (!o) this.orders.set(key, (o = shuffledIndices(count, deriveSeed(this.options.seed, stream, 7))));
    return o;
  }

  batchIndices(order: Uint32Array, b: number): Uint32Array {
    return order.subarray(b * this.batchSize, (b + 1) * this.batchSize);
  }

  call(inputs: Float32Array, batch: number, extra: { task?: string; method?: MethodSpec; decideFrom?: DecideFrom }) {
    const inference = extra.method ? { method: extra.method.method, objective: extra.method.objective, decideFrom: extra.decideFrom } : undefined;
    const start = performance.now();
    const call = this.engine.validate({ inputs, batch, task: extra.task, inference });
    // The operator's setting, not the call's: set here so one engine evaluates every method.
    if (extra.method) call.inference.rerank = extra.method.rerank;
    const predictions = this.engine.classify(call);
    return { predictions, ms: performance.now() - start };
  }

  /** Rows `idx` of a task's images and labels. */
  pick(ds: Dataset, idx: ArrayLike<number>) {
    const { pixels } = this;
    const inputs = new Float32Array(idx.length * pixels);
    const labels = new Uint8Array(idx.length);
    for (let i = 0; i < idx.length; i++) {
      if (idx[i] >= ds.count) throw new RangeError(`example ${idx[i]} is past the ${ds.count} of ${ds.name}`);
      inputs.set(ds.images.subarray(idx[i] * pixels, (idx[i] + 1) * pixels), i * pixels);
      labels[i] = ds.labels[idx[i]];
    }
    return { inputs, labels };
  }

  /** Given-task accuracy on all of `ds`, in chunks under the engine's batch limit. */
  ggAccuracy(id: string, ds: Dataset): number {
    const { pixels } = this;
    const chunk = Math.min(this.engine.limits.maxBatch, DEFAULT_MAX_BATCH);
    let correct = 0;
    for (let s = 0; s < ds.count; s += chunk) {
      const n = Math.min(chunk, ds.count - s);
      const { predictions } = this.call(ds.images.subarray(s * pixels, (s + n) * pixels), n, { task: id });
      predictions.forEach((p, i) => (correct += p.label === ds.labels[s + i] ? 1 : 0));
    }
    return correct / ds.count;
  }

  /** GN on one known task: scores per method / decideFrom, and GG on the same batches. */
  gnOnTask(task: EvalTask, position: number, ds: Dataset, specs: MethodSpec[], decideFrom: DecideFrom[]) {
    const k = this.engine.taskCount;
    const order = this.order(position, ds.count);
    const batches = Math.min(this.batches, Math.floor(ds.count / this.batchSize));
    const scores: Record<string, Score> = {};
    let ggCorrect = 0;
    let ggExamples = 0;
    for (let b = 0; b < batches; b++) {
      const { inputs, labels } = this.pick(ds, this.batchIndices(order, b));
      const { predictions } = this.call(inputs, labels.length, { task: task.id });
      predictions.forEach((p, i) => (ggCorrect += p.label === labels[i] ? 1 : 0));
      ggExamples += labels.length;
    }
    for (const m of specs) {
      for (const d of decideFrom.filter((d) => evaluatedFrom(m, d))) {
        const s = (scores[methodKey(m, d)] = emptyScore());
        if (d === 'each') {
          const { inputs, labels } = this.pick(ds, order.subarray(0, this.eachExamples));
          const { predictions, ms } = this.call(inputs, labels.length, { method: m, decideFrom: d });
          s.ms += ms;
          predictions.forEach((p, i) => {
            s.examples++;
            s.correct += p.label === labels[i] ? 1 : 0;
            s.decisions++;
            s.taskCorrect += p.task.id === task.id ? 1 : 0;
            s.flaggedUnknown += p.task.unknown ? 1 : 0;
            s.margins.push(k * p.task.confidence);
          });
          continue;
        }
        for (let b = 0; b < batches; b++) {
          const { inputs, labels } = this.pick(ds, this.batchIndices(order, b));
          const { predictions, ms } = this.call(inputs, labels.length, { method: m, decideFrom: d });
          s.ms += ms;
          predictions.forEach((p, i) => (s.correct += p.label === labels[i] ? 1 : 0));
          s.examples += labels.length;
          s.decisions++;
          s.taskCorrect += predictions[0].task.id === task.id ? 1 : 0;
          s.flaggedUnknown += predictions[0].task.unknown ? 1 : 0;
          s.margins.push(k * predictions[0].task.confidence);
        }
      }
    }
    return { scores, ggOnBatches: ggCorrect / Math.max(1, ggExamples), ggExamples };
  }
}

/** Phase 1. Every task: GG on the whole test split, GN by every method. */
function knownTasks(run: EvalRun, tasks: EvalTask[]) {
  const { options, methods } = run;
  const perTask: TaskResult[] = [];
  const totals: Record<string, Score> = {};
  let ggMs = 0;
  let gnMs = 0;
  let ggSum = 0;
  let ggExamples = 0;
  let ggBatchSum = 0;
  tasks.forEach((task, i) => {
    const ds = taskDataset(task.transform, run.test);
    const g0 = performance.now();
    const gg = run.ggAccuracy(task.id, ds);
    ggMs += performance.now() - g0;
    const n0 = performance.now();
    const { scores, ggOnBatches } = run.gnOnTask(task, i, ds, methods, options.decideFrom);
    gnMs += performance.now() - n0;
    for (const [k, s] of Object.entries(scores)) addScore((totals[k] ??= emptyScore()), s);
    ggSum += gg * ds.count;
    ggExamples += ds.count;
    ggBatchSum += ggOnBatches;
    perTask.push({ id: task.id, gg, ggExamples: ds.count, ggOnBatches, gn: mapValues(scores, summarize) });
    const [key, first] = Object.entries(scores)[0];
    run.log(`task ${i + 1}/${tasks.length} ${task.id}: GG ${pct(gg)}, GN (${key}) ${pct(first.correct / first.examples)}`);
  });
  const gg = { accuracy: ggSum / Math.max(1, ggExamples), examples: ggExamples, accuracyOnBatches: ggBatchSum / Math.max(1, tasks.length) };
  return { perTask, totals, gg, ggMs, gnMs };
}

/** Phase 2. Tasks the model has not learned: how many of their batches are flagged unknown. */
function unknownTasks(run: EvalRun, tasks: EvalTask[], knownTotals: Record<string, Score>): Record<string, UnknownSummary> {
  const { options, methods } = run;
  const known = new Set(tasks.map((t) => JSON.stringify(t.transform)));
  const unknownDecide = options.decideFrom.filter((d) => d !== 'each');
  const counts: Record<string, { flagged: number; n: number; margins: number[] }> = {};
  const k = run.engine.taskCount;
  for (let u = 0; u < options.unknownTasks; u++) {
    const transform = permutedTask(options.unknownFrom + u, run.pixels);
    if (known.has(JSON.stringify(transform))) continue;
    const ds = taskDataset(transform, run.test);
    const order = run.order(tasks.length + u);
    for (const m of methods) {
      for (const d of unknownDecide.filter((d) => evaluatedFrom(m, d))) {
        const c = (counts[methodKey(m, d)] ??= { flagged: 0, n: 0, margins: [] });
        for (let b = 0; b < Math.min(options.unknownBatches, run.batches || 1); b++) {
          const { inputs, labels } = run.pick(ds, run.batchIndices(order, b));
          const { predictions } = run.call(inputs, labels.length, { method: m, decideFrom: d });
          c.flagged += predictions[0].task.unknown ? 1 : 0;
          c.margins.push(k * predictions[0].task.confidence);
          c.n++;
        }
      }
    }
    run.log(`unknown task ${u + 1}/${options.unknownTasks} done`);
  }
  return mapValues(counts, (c, key) => ({ rate: c.n ? c.flagged / c.n : 0, decisions: c.n, calibration: calibrate(knownTotals[key]?.margins ?? [], c.margins) }));
}

/** Phase 3. The curve: the engine holds the first n tasks, for each n from large to small. */
function curveOverTasks(run: EvalRun, tasks: EvalTask[]): CurvePoint[] {
  const { options } = run;
  // The model's own task count is always a point, so the curve ends where the tables are.
  const points = [...new Set([...options.curve.filter((n) => n >= 1 && n <= tasks.length), tasks.length])].sort((a, b) => b - a);
  const curve: CurvePoint[] = [];
  const main = run.methods[0];
  let held = tasks.length;
  for (const n of points) {
    while (held > n) run.engine.removeTask(tasks[--held].id);
    const chosen = evenlySpaced(n, options.curveTasks);
    let gg = 0;
    const s = emptyScore();
    for (const i of chosen) {
      const ds = taskDataset(tasks[i].transform, run.test);
      const r = run.gnOnTask(tasks[i], i, ds, [main], ['first']);
      gg += r.ggOnBatches;
      addScore(s, r.scores[methodKey(main, 'first')]);
    }
    const sum = summarize(s);
    curve.push({ tasks: n, evaluatedTasks: chosen.length, gg: gg / chosen.length, gn: sum.accuracy, taskIdAccuracy: sum.taskIdAccuracy, unknownRate: sum.unknownRate });
    run.log(`curve: ${n} tasks: GG ${pct(gg / chosen.length)}, GN ${pct(sum.accuracy)}, task id ${pct(sum.taskIdAccuracy)}`);
  }
  return curve.reverse();
}

function timed<T>(fn: () => T): { result: T; ms: number } {
  const start = performance.now();
  const result = fn();
  return { result, ms: performance.now() - start };
}

/**
 * The threshold on k · ν that best separates known-task decisions (which should pass) from unknown-task
 * ones (which should be flagged): it maximises flagged-unknown minus flagged-known, ties to fewer known
 * flagged, and is placed half-way between neighbouring observed values. Chosen on the same decisions it
 * is scored on, so it is optimistic: confirm with `--epsilon` on other batches and other unknown tasks.
 */
export function calibrate(known: number[], unknown: number[]): Calibration {
  const k = Float64Array.from(known).sort();
  const u = Float64Array.from(unknown).sort();
  const below = (a: Float64Array, t: number) => {
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const values = [...new Set([...k, ...u])].sort((a, b) => a - b);
  let best = { t: 1, score: -Infinity, uf: 0, kf: 0 };
  for (let i = 0; i <= values.length; i++) {
    const t = i === 0 ? 1 : i === values.length ? values[i - 1] + 1 : (values[i - 1] + values[i]) / 2;
    const uf = u.length ? below(u, t) / u.length : 0;
    const kf = k.length ? below(k, t) / k.length : 0;
    const score = uf - kf;
    if (score > best.score + 1e-12 || (Math.abs(score - best.score) <= 1e-12 && kf < best.kf)) best = { t, score, uf, kf };
  }
  const q = (a: Float64Array): [number, number, number] =>
    a.length ? [a[Math.floor((a.length - 1) / 4)], a[Math.floor((a.length - 1) / 2)], a[Math.floor((3 * (a.length - 1)) / 4)]] : [0, 0, 0];
  return { epsilon: Math.max(0, best.t - 1), unknownFlagged: best.uf, knownFlagged: best.kf, known: q(k), unknown: q(u) };
}

function stripCallbacks(o: EvalOptions): Omit<EvalOptions, 'onProgress' | 'methods'> {
  const { onProgress: _p, methods: _m, ...rest } = o;
  return rest;
}

function emptyScore(): Score {
  return { examples: 0, correct: 0, decisions: 0, taskCorrect: 0, flaggedUnknown: 0, margins: [], ms: 0 };
}

function addScore(into: Score, s: Score): void {
  into.examples += s.examples;
  into.correct += s.correct;
  into.decisions += s.decisions;
  into.taskCorrect += s.taskCorrect;
  into.flaggedUnknown += s.flaggedUnknown;
  for (const m of s.margins) into.margins.push(m);
  into.ms += s.ms;
}

function summarize(s: Score): ScoreSummary {
  return {
    accuracy: s.examples ? s.correct / s.examples : 0,
    taskIdAccuracy: s.decisions ? s.taskCorrect / s.decisions : 0,
    unknownRate: s.decisions ? s.flaggedUnknown / s.decisions : 0,
    examples: s.examples,
    decisions: s.decisions,
    msPerCall: s.decisions ? s.ms / s.decisions : 0,
  };
}

function mapValues<A, B>(o: Record<string, A>, f: (a: A, key: string) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v, k)]));
}

/** Up to `max` indices among 0..n−1, evenly spaced, always including the first and the last. */
export function evenlySpaced(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  if (max <= 1) return [n - 1];
  return [...new Set(Array.from({ length: max }, (_, i) => Math.round((i * (n - 1)) / (max - 1))))];
}

function pct(x: number): string {
  return `${(100 * x).toFixed(2)}%`;
}
