import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Architecture } from '../src/core/architecture.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { evalCommand, markdownSummary, orderTasks } from '../src/cli/commands/eval.ts';
import { type EvalReport, METHODS, calibrate, evaluateModel, evenlySpaced, withReranking } from '../src/eval/evaluate.ts';
import { curveSvg } from '../src/eval/plot.ts';
import { readManifest } from '../src/model/model-store.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import { runTraining } from '../src/train/run.ts';

const TINY: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 20, classes: 10 };
let root: string;
let model: string;

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'supsup-eval-'));
  model = path.join(root, 'model');
  await runTraining({
    modelDir: model,
    create: { architecture: TINY, seed: 3, normalization: { mean: 0.1307, std: 0.3081 } },
    config: { data: 'mnist', family: 'permuted', steps: 150, batch: 64, lr: 1e-3, mask: 'gn', density: 0.5, trainSeed: 1, transfer: false, backend: 'wasm' },
    tasks: 3,
    workers: 1,
  });
});
after(() => rmSync(root, { recursive: true, force: true }));

describe('eval', () => {
  it('reports sane accuracies, task identification and unknown rates on a tiny model', async () => {
    const { engine, manifest } = await openEngine(model, { backend: 'wasm', kernels: 'typescript' });
    const test = loadDataset('mnist').test;
    const tasks = orderTasks(manifest.tasks).map((t) => ({ id: t.id, transform: t.transform }));
    const r: EvalReport = evaluateModel(engine, tasks, test, {
      batches: 2, batchSize: 32, eachExamples: 4, unknownTasks: 2, unknownFrom: 1_000_000, unknownBatches: 2,
      curve: [1, 2], curveTasks: 3, seed: 1, methods: METHODS, decideFrom: ['first', 'batch', 'each'],
    });
    engine.dispose();
    assert.equal(r.tasks, 3);
    assert.equal(r.perTask.length, 3);
    assert.equal(r.gg.examples, 3 * test.count);
    assert.ok(r.gg.accuracy > 0.6, `GG ${r.gg.accuracy} is far above chance`);
    assert.deepEqual(Object.keys(r.gn).sort(), METHODS.flatMap((m) => ['first', 'batch', 'each'].map((d) => `${m.name} / ${d}`)).sort());
    for (const [key, s] of Object.entries(r.gn)) {
      assert.ok(s.accuracy >= 0 && s.accuracy <= 1 && s.taskIdAccuracy >= 0 && s.taskIdAccuracy <= 1, key);
      assert.equal(s.decisions, key.endsWith('each') ? 3 * 4 : 3 * 2, key);
    }
    // Three very different permutations: one image is enough to tell them apart.
    assert.ok(r.gn['one-shot H / first'].taskIdAccuracy >= 5 / 6, JSON.stringify(r.gn['one-shot H / first']));
    assert.ok(r.gn['one-shot H / batch'].taskIdAccuracy === 1);
    // Picking the right task gives the given-task answer: GN equals GG on batches whose task was found.
    if (r.gn['one-shot H / batch'].taskIdAccuracy === 1) assert.equal(r.gn['one-shot H / batch'].accuracy, r.gg.accuracyOnBatches);
    for (const u of Object.values(r.unknown.flagged)) {
      assert.ok(u.rate >= 0 && u.rate <= 1 && u.decisions === 4);
      assert.ok(u.calibration.epsilon >= 0 && u.calibration.unknownFlagged - u.calibration.knownFlagged >= 0);
    }
    assert.deepEqual(r.curve.map((c) => c.tasks), [1, 2, 3]);
    assert.equal(r.curve[0].taskIdAccuracy, 1, 'with one task there is nothing to confuse');

    const md = markdownSummary({ ...r, model: 'tiny', data: test.name, epsilon: 0.125 });
    assert.match(md, /\| one-shot H \| first example of each 32 \|/);
    const svg = curveSvg(r.curve, { title: 'tiny', gnLabel: 'GN' });
    assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.equal(svg.match(/<polyline /g)?.length, 3);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
  });

  it('the command writes the JSON report and the SVG', async () => {
    const out = path.join(root, 'out', 'report.json');
    const svg = path.join(root, 'out', 'curve.svg');
    const log = console.log;
    let printed = '';
    console.log = (s: string) => (printed += s);
    try {
      await evalCommand([
        '--model', model, '--batches', '1', '--batch-size', '16', '--each-examples', '2', '--unknown-tasks', '1',
        '--unknown-batches', '1', '--methods', 'one-shot-H', '--decide', 'first,each', '--curve', '1', '--kernels', 'typescript',
        '--out', out, '--svg', svg, '--quiet',
      ]);
    } finally {
      console.log = log;
    }
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.data, 'mnist/test');
    // By default each one-shot method twice: re-ranked as served, and as the paper has it.
    assert.deepEqual(Object.keys(report.gn).sort(), ['one-shot H / each', 'one-shot H / first', 'one-shot H, top 4 re-ranked / each', 'one-shot H, top 4 re-ranked / first']);
    assert.deepEqual(report.options.methods, ['one-shot H, top 4 re-ranked', 'one-shot H']);
    assert.match(readFileSync(svg, 'utf8'), /<svg/);
    assert.match(printed, /Task given \(GG\)/);
  });

  it("--save-epsilon stores ε and this run's evidence in the manifest; serving then uses it", async () => {
    const copy = path.join(root, 'calibrated');
    cpSync(model, copy, { recursive: true });
    const out = path.join(root, 'out', 'saved.json');
    const common = ['--model', copy, '--batches', '2', '--batch-size', '16', '--each-examples', '1', '--unknown-tasks', '2', '--unknown-batches', '1', '--methods', 'one-shot-H', '--curve', '1', '--kernels', 'typescript', '--quiet'];
    await assert.rejects(evalCommand([...common, '--save-epsilon']), /--save-epsilon needs --epsilon X/);
    await assert.rejects(evalCommand([...common, '--epsilon', '0.3', '--save-epsilon', '--tasks', '2']), /drop --tasks/);
    await assert.rejects(evalCommand([...common, '--epsilon', '0.3', '--save-epsilon', '--decide', 'first']), /--decide with batch/);
    assert.equal((await readManifest(copy)).unknownTask, undefined, 'refusals write nothing');
    const log = console.log;
    console.log = () => undefined;
    try {
      await evalCommand([...common, '--decide', 'batch', '--epsilon', '0.3', '--save-epsilon', '--out', out]);
    } finally {
      console.log = log;
    }
    const report = JSON.parse(readFileSync(out, 'utf8'));
    const saved = (await readManifest(copy)).unknownTask!;
    assert.equal(saved.epsilon, 0.3);
    const u = report.unknown.flagged['one-shot H / batch'], k = report.gn['one-shot H / batch'];
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    assert.match(saved.calibration, new RegExp(`${pct(u.rate)} of ${u.decisions} batches of 2 unseen tasks .* flagged unknown, ${pct(k.unknownRate)} of ${k.decisions} known-task batches`));
    const { engine, epsilonSource } = await openEngine(copy, { backend: 'wasm', kernels: 'typescript' });
    assert.equal(engine.limits.epsilon, 0.3);
    assert.match(epsilonSource, /^the model's own: supsup eval/);
    engine.dispose();
  });

  it('evaluates each one-shot method per --rerank value, re-ranked calls with their m, batch decisions once', async () => {
    const { engine, manifest } = await openEngine(model, { backend: 'wasm', kernels: 'typescript' });
    const seen = new Map<string, Set<number>>();
    const classify = engine.classify.bind(engine);
    engine.classify = (call) => {
      const key = call.task === undefined ? `${call.inference.method} ${call.inference.objective} ${call.inference.decideFrom}` : 'given';
      (seen.get(key) ?? seen.set(key, new Set()).get(key)!).add(call.inference.rerank);
      return classify(call);
    };
    const tasks = orderTasks(manifest.tasks).map((t) => ({ id: t.id, transform: t.transform }));
    const methods = withReranking(METHODS, [2, 1]);
    assert.deepEqual(methods.map((m) => [m.name, m.rerank]), [
      ['one-shot H, top 2 re-ranked', 2], ['one-shot H', 1], ['one-shot G, top 2 re-ranked', 2], ['one-shot G', 1], ['binary H', 1],
    ]);
    const r = evaluateModel(engine, tasks, loadDataset('mnist').test, {
      batches: 1, batchSize: 16, eachExamples: 2, unknownTasks: 1, unknownFrom: 1_000_000, unknownBatches: 1,
      curve: [2], curveTasks: 2, seed: 1, methods, decideFrom: ['first', 'batch', 'each'],
    });
    engine.dispose();
    assert.ok(!('one-shot H, top 2 re-ranked / batch' in r.gn) && !('one-shot H, top 2 re-ranked / batch' in r.unknown.flagged), 'a whole batch is not re-ranked');
    assert.equal(Object.keys(r.gn).length, 5 * 3 - 2);
    assert.ok('one-shot G, top 2 re-ranked / first' in r.unknown.flagged);
    assert.deepEqual([...seen.get('one-shot entropy first')!].sort(), [1, 2]);
    assert.deepEqual([...seen.get('one-shot superfluous each')!].sort(), [1, 2]);
    assert.deepEqual([...seen.get('one-shot entropy batch')!], [1]);
    assert.deepEqual([...seen.get('binary entropy first')!], [1]);
    assert.equal(r.options.methods[0], 'one-shot H, top 2 re-ranked', 'the curve follows the first method');
  });

  it('refuses bad flags', async () => {
    await assert.rejects(evalCommand([]), /--model DIR is required/);
    await assert.rejects(evalCommand(['--model', model, '--methods', 'one-shot-X']), /--methods: must be a comma-separated list/);
    await assert.rejects(evalCommand(['--model', model, '--decide', 'all']), /--decide: must be a comma-separated list/);
    await assert.rejects(evalCommand(['--model', model, '--rerank', '4,0']), /--rerank: must be a comma-separated list of whole numbers of at least 1/);
    await assert.rejects(evalCommand(['--model', model, '--batches', '-2']), /argument is ambiguous|--batches: must be/);
  });

  it('calibrates ε to separate known from unknown decisions', () => {
    // Known decisions have k·ν of 3, 4, 5; unknown ones 1.05, 1.1, 2: any threshold in (2, 3] separates them.
    const c = calibrate([3, 4, 5], [1.05, 1.1, 2]);
    assert.equal(c.unknownFlagged, 1);
    assert.equal(c.knownFlagged, 0);
    assert.equal(c.epsilon, 1.5);
    // Overlap: the best threshold trades one for the other.
    const o = calibrate([1.2, 3, 4, 5], [1.05, 1.1, 3.5]);
    assert.ok(o.unknownFlagged - o.knownFlagged >= 2 / 3 - 1 / 4 - 1e-9);
  });

  it('draws the GN batches of a split task from that task\'s own examples, not the whole test split', async () => {
    const split = path.join(root, 'split');
    await runTraining({
      modelDir: split,
      create: { architecture: { ...TINY, outputs: 4, classes: 2 }, seed: 3, normalization: { mean: 0.1307, std: 0.3081 } },
      config: { data: 'mnist', family: 'split', steps: 60, batch: 64, lr: 1e-3, mask: 'gn', density: 0.5, trainSeed: 1, transfer: false, backend: 'wasm' },
      tasks: 2,
      workers: 1,
    });
    const { engine, manifest } = await openEngine(split, { backend: 'wasm', kernels: 'typescript' });
    const test = loadDataset('mnist').test;
    const tasks = orderTasks(manifest.tasks).map((t) => ({ id: t.id, transform: t.transform }));
    const r = evaluateModel(engine, tasks, test, {
      batches: 4, batchSize: 128, eachExamples: 4, unknownTasks: 0, unknownFrom: 1_000_000, unknownBatches: 1,
      curve: [1], curveTasks: 2, seed: 1, methods: [METHODS[0]], decideFrom: ['batch'],
    });
    engine.dispose();
    // Digits 0/1 and 2/3 only: about a fifth of the test split each, all of them used for GG.
    assert.ok(r.gg.examples < test.count / 2, `${r.gg.examples} examples`);
    assert.ok(r.gg.accuracy > 0.8, `GG ${r.gg.accuracy}`);
    // Batches of the task's own digits score like the whole task (past its examples they would read blanks).
    assert.ok(Math.abs(r.gg.accuracyOnBatches - r.gg.accuracy) < 0.05, `${r.gg.accuracyOnBatches} on batches vs ${r.gg.accuracy}`);
    assert.equal(r.gn[`${METHODS[0].name} / batch`].decisions, 2 * 4);
  });

  it('spaces curve tasks evenly, first and last included', () => {
    assert.deepEqual(evenlySpaced(3, 5), [0, 1, 2]);
    assert.deepEqual(evenlySpaced(250, 3), [0, 125, 249]);
  });
});
