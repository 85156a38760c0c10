// Calibrating and measuring the one-example unknown-task rule (core/unknown-score.ts) of a model, through the
// Engine: every example decides its task alone (one-shot H, the service's objective) and gets the best fit of
// its top candidate masks. Two disjoint halves of a seeded shuffle of the test split, and two disjoint ranges
// of permutations the model never saw:
//   calibration: known tasks on half A, unseen permutations from seed `unknownFrom` on half A → the threshold;
//   measurement: known tasks on half B, unseen permutations from `unknownFrom + HELD_OUT_OFFSET` on half B →
//   ROC AUC and the rates flagged at that threshold (nothing here was seen by the choice), beside the paper's
//   k · max ν < 1 + ε on the same examples.
import { type Engine } from '../core/engine.ts';
import { deriveSeed, shuffledIndices } from '../core/prng.ts';
import { fitScoreFor, ONE_EXAMPLE_CANDIDATES, type OneExampleRule } from '../core/unknown-score.ts';
import { DEFAULT_INFERENCE } from '../contract/classify.ts';
import { type Dataset } from '../data/datasets.ts';
import { type TaskTransform, permutedTask, taskDataset } from '../data/transforms.ts';
import { chooseThreshold, flaggedBelow, rocAuc } from './score-separation.ts';

/** Held-out permutations start this far above the calibration ones. */
export const HELD_OUT_OFFSET = 1_000_000;
/** Default budget of known-task calibration examples flagged. */
export const MAX_KNOWN_FLAGGED = 0.005;

export interface UnknownCalibrationOptions {
  /** Examples per known task and per unseen permutation, in each phase. */
  examples: number;
  /** Unseen permutations in each phase. */
  unknownTasks: number;
  /** Seed of the first calibration permutation; the held-out ones start HELD_OUT_OFFSET above. */
  unknownFrom: number;
  /** Shuffle seed of the test split. */
  seed: number;
  /** The most known-task calibration examples the threshold may flag (below the 1%, for held-out noise). */
  maxKnownFlagged: number;
  candidates?: number;
  onProgress?: (message: string) => void;
}

/** One phase's scores: best fits (and k · max ν) of known-task and unseen-task examples. */
export interface PhaseScores {
  known: { fit: number[]; kNu: number[]; taskCorrect: number };
  unknown: { fit: number[]; kNu: number[] };
}

export interface RuleFigures {
  rocAuc: number;
  /** Unseen-task examples flagged, and known-task examples wrongly flagged, at the rule's threshold. */
  unknownFlagged: number;
  knownFlagged: number;
}

export interface UnknownCalibrationReport {
  rule: OneExampleRule;
  maxKnownFlagged: number;
  tasks: number;
  examples: number;
  unknownTasks: number;
  calibrationFrom: number;
  heldOutFrom: number;
  /** In-sample, on the calibration phase. */
  calibration: RuleFigures;
  /** On the held-out phase. */
  heldOut: RuleFigures & { taskIdAccuracy: number };
  /** Held-out fits: known-task minimum, 1st percentile and median; unseen-task median, 99th percentile and maximum. */
  heldOutFits: { known: [number, number, number]; unknown: [number, number, number] };
  /** The paper's rule k · max ν < 1 + ε on the same held-out examples, at the engine's ε. */
  paper: RuleFigures & { epsilon: number };
  seconds: number;
}

export function calibrateUnknown(engine: Engine, tasks: { id: string; transform: TaskTransform }[], test: Dataset, o: UnknownCalibrationOptions): UnknownCalibrationReport {
  const t0 = performance.now();
  const pixels = engine.architecture.inputSize;
  if (test.width * test.height !== pixels) throw new Error(`${test.name} has ${test.width * test.height} pixels per image, the model takes ${pixels}`);
  if (tasks.length < 2) throw new Error('unknown-task calibration needs a model of at least two tasks');
  const order = shuffledIndices(test.count, deriveSeed(o.seed, 0, 11));
  const half = Math.floor(test.count / 2);
  if (o.examples > half) throw new Error(`--each-examples must be at most ${half} (half the test split)`);
  const halves = [order.subarray(0, half), order.subarray(half, 2 * half)];
  const known = new Set(tasks.map((t) => JSON.stringify(t.transform)));
  const candidates = o.candidates ?? ONE_EXAMPLE_CANDIDATES;
  const log = o.onProgress ?? (() => undefined);

  const phase = (pool: Uint32Array, unknownFrom: number, name: string): PhaseScores => {
    // Each stream (task or permutation) takes its own window of the half, so the examples differ between streams.
    const pick = (stream: number) => {
      const start = (stream * o.examples) % (pool.length - o.examples + 1);
      return subset(test, pool.subarray(start, start + o.examples));
    };
    const scores: PhaseScores = { known: { fit: [], kNu: [], taskCorrect: 0 }, unknown: { fit: [], kNu: [] } };
    tasks.forEach((task, i) => {
      const ds = taskDataset(task.transform, pick(i));
      for (const r of fits(engine, ds, candidates)) {
        scores.known.fit.push(r.fit);
        scores.known.kNu.push(tasks.length * r.confidence);
        scores.known.taskCorrect += r.taskId === task.id ? 1 : 0;
      }
    });
    log(`${name}: ${tasks.length} known tasks scored`);
    for (let u = 0; u < o.unknownTasks; u++) {
      const transform = permutedTask(unknownFrom + u, pixels);
      if (known.has(JSON.stringify(transform))) continue;
      for (const r of fits(engine, taskDataset(transform, pick(tasks.length + u)), candidates)) {
        scores.unknown.fit.push(r.fit);
        scores.unknown.kNu.push(tasks.length * r.confidence);
      }
    }
    log(`${name}: ${o.unknownTasks} unseen permutations from seed ${unknownFrom} scored`);
    return scores;
  };

  const heldOutFrom = o.unknownFrom + HELD_OUT_OFFSET;
  const cal = phase(halves[0], o.unknownFrom, 'calibration');
  const chosen = chooseThreshold(cal.known.fit, cal.unknown.fit, o.maxKnownFlagged);
  const rule: OneExampleRule = { score: fitScoreFor(engine.architecture.outputs, engine.architecture.classes), candidates, threshold: chosen.threshold };
  const held = phase(halves[1], heldOutFrom, 'held out');
  const epsilon = engine.limits.epsilon;
  return {
    rule,
    maxKnownFlagged: o.maxKnownFlagged,
    tasks: tasks.length,
    examples: o.examples,
    unknownTasks: o.unknownTasks,
    calibrationFrom: o.unknownFrom,
    heldOutFrom,
    calibration: figures(cal.known.fit, cal.unknown.fit, rule.threshold),
    heldOut: { ...figures(held.known.fit, held.unknown.fit, rule.threshold), taskIdAccuracy: held.known.taskCorrect / held.known.fit.length },
    heldOutFits: { known: quantiles(held.known.fit, [0, 0.01, 0.5]), unknown: quantiles(held.unknown.fit, [0.5, 0.99, 1]) },
    paper: { ...figures(held.known.kNu, held.unknown.kNu, 1 + epsilon), epsilon },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** One line of evidence for the manifest: the rule and what the held-out phase measured at it. */
export function calibrationEvidence(r: UnknownCalibrationReport, data: string): string {
  const p = (x: number) => `${(100 * x).toFixed(2)}%`;
  const when = new Date().toISOString().slice(0, 10);
  return (
    `supsup eval --calibrate-unknown ${when} on ${data}, ${r.tasks} tasks: threshold chosen on ${r.examples} examples per task and per ` +
    `unseen permutation (${r.unknownTasks}, seeds from ${r.calibrationFrom}), flagging at most ${p(r.maxKnownFlagged)} of known ones; held out (other test examples, permutations from ${r.heldOutFrom}): ` +
    `ROC AUC ${r.heldOut.rocAuc.toFixed(6)}, ${p(r.heldOut.unknownFlagged)} of unseen-task examples flagged, ${p(r.heldOut.knownFlagged)} of known ones`
  );
}

export function calibrationMarkdown(r: UnknownCalibrationReport, model: string, data: string): string {
  const p = (x: number) => `${(100 * x).toFixed(2)}%`;
  const q = (a: number[]) => a.map((v) => v.toFixed(2)).join(' / ');
  const row = (name: string, f: RuleFigures) => `| ${name} | ${f.rocAuc.toFixed(6)} | ${p(f.unknownFlagged)} | ${p(f.knownFlagged)} |`;
  return [
    `### ${model}: unknown task from one example (${r.tasks} tasks, ${data})`,
    '',
    `Rule: unknown when the best ${r.rule.score} fit of the ${r.rule.candidates} top-ranked masks (one-shot H) is below ${r.rule.threshold.toFixed(4)}.`,
    `Each phase: ${r.examples} examples per known task (${r.examples * r.tasks}) and per unseen permutation (${r.unknownTasks} permutations); ` +
      `the threshold flags at most ${p(r.maxKnownFlagged)} of the known calibration examples.`,
    '',
    '| rule, examples | ROC AUC | unseen-task examples flagged | known-task examples flagged |',
    '|---|---|---|---|',
    row(`fit < threshold, calibration (in-sample, seeds from ${r.calibrationFrom})`, r.calibration),
    row(`fit < threshold, held out (seeds from ${r.heldOutFrom})`, r.heldOut),
    row(`paper: k · max ν < 1 + ${r.paper.epsilon}, same held-out examples`, r.paper),
    '',
    `Held-out fits: known tasks min / 1st percentile / median ${q(r.heldOutFits.known)}; unseen tasks median / 99th percentile / max ${q(r.heldOutFits.unknown)}.`,
    `Task-id accuracy of the held-out known examples (each deciding alone): ${p(r.heldOut.taskIdAccuracy)}. Time: ${r.seconds.toFixed(1)} s.`,
  ].join('\n');
}

/** Values at the given fractions of the sorted sample (nearest rank below). */
function quantiles(values: number[], at: [number, number, number]): [number, number, number] {
  const sorted = Float64Array.from(values).sort();
  return at.map((f) => sorted[Math.floor(f * (sorted.length - 1))]) as [number, number, number];
}

function figures(known: number[], unknown: number[], threshold: number): RuleFigures {
  return { rocAuc: rocAuc(known, unknown), unknownFlagged: flaggedBelow(unknown, threshold), knownFlagged: flaggedBelow(known, threshold) };
}

/** Every example of `ds` deciding alone, as the service's one-shot H does, with its best fit. */
function fits(engine: Engine, ds: Dataset, candidates: number) {
  const call = engine.validate({ inputs: ds.images, batch: ds.count, inference: { method: DEFAULT_INFERENCE.method, objective: DEFAULT_INFERENCE.objective } });
  return engine.oneExampleFits(call, candidates);
}

function subset(ds: Dataset, idx: Uint32Array): Dataset {
  const size = ds.width * ds.height;
  const images = new Float32Array(idx.length * size);
  const labels = new Uint8Array(idx.length);
  idx.forEach((src, i) => {
    images.set(ds.images.subarray(src * size, (src + 1) * size), i * size);
    labels[i] = ds.labels[src];
  });
  return { ...ds, images, labels, count: idx.length };
}
