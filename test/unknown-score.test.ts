// The one-example unknown-task score (core/unknown-score.ts), its calibration statistics, the manifest field
// that stores the rule, and the engine applying it, on constructed cases.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Engine } from '../src/core/engine.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { fitCandidates, fitOf, fitsOf, fitScoreFor, isUnknownByFit, type OneExampleRule } from '../src/core/unknown-score.ts';
import { chooseThreshold, flaggedBelow, rocAuc } from '../src/eval/score-separation.ts';
import { readManifest, setUnknownTaskThreshold } from '../src/model/model-store.ts';
import { validateManifest } from '../src/model/manifest.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { TINY, randomMask, referenceLogits } from './support/reference-mlp.ts';
import { tempDir, tinyModel } from './support/service-fixture.ts';

const SEED = 7;

describe('one-example fit score', () => {
  it('is the margin of the real classes over the superfluous outputs, or their energy without any', () => {
    // lse of n equal logits c is c + log n.
    assert.ok(Math.abs(fitOf([1, 1, 1, 1, 2, 2], 4, 'real-vs-superfluous') - (1 + Math.log(4) - (2 + Math.log(2)))) < 1e-12);
    assert.ok(Math.abs(fitOf([1, 1, 1, 1], 4, 'real-energy') - (1 + Math.log(4))) < 1e-12);
    assert.throws(() => fitOf([1, 2, 3, 4], 4, 'real-vs-superfluous'), /needs superfluous outputs/);
    assert.equal(fitScoreFor(100, 10), 'real-vs-superfluous');
    assert.equal(fitScoreFor(10, 10), 'real-energy');
    // Large logits do not overflow.
    assert.ok(Math.abs(fitOf([1000, 0, 0, 0, -1000, -1000], 4, 'real-vs-superfluous') - (2000 - Math.log(2))) < 1e-9);
  });

  it('scores a mask that commits to a real class above one that spreads over every output', () => {
    // What a trained mask does on its own task: one real class high, superfluous outputs low.
    const known = [9, 1, 0, 0, -4, -5, -3, -6];
    // A mask shown data it never saw: flat-ish logits, superfluous as high as the real ones.
    const unknown = [1.5, 1, 1.2, 0.8, 1.4, 1.1, 1.3, 0.9];
    for (const score of ['real-vs-superfluous', 'real-energy'] as const) {
      const k = fitOf(known.slice(0, score === 'real-energy' ? 4 : 8), 4, score);
      const u = fitOf(unknown.slice(0, score === 'real-energy' ? 4 : 8), 4, score);
      assert.ok(k > u, `${score}: ${k} > ${u}`);
    }
    // The margin is what tells them apart when both are confident about a real class but one keeps the superfluous up.
    const loud = [9, 1, 0, 0, 8.5, 8, 8, 8];
    assert.ok(fitOf(known, 4, 'real-vs-superfluous') > fitOf(loud, 4, 'real-vs-superfluous') + 5);
  });

  it('scores each candidate row, and refuses partial rows', () => {
    const rows = Float32Array.from([0, 0, 0, 0, 5, 5, 5, 5, /* row 2 */ 6, 0, 0, 0, -2, -2, -2, -2]);
    const fits = fitsOf(rows, 8, 4, 'real-vs-superfluous');
    assert.deepEqual(Array.from(fits), [fitOf(rows.subarray(0, 8), 4, 'real-vs-superfluous'), fitOf(rows.subarray(8), 4, 'real-vs-superfluous')]);
    assert.ok(fits[1] > fits[0]);
    assert.throws(() => fitsOf(rows.subarray(0, 7), 8, 4, 'real-vs-superfluous'), /whole rows of 8/);
    assert.throws(() => fitsOf(new Float32Array(0), 8, 4, 'real-vs-superfluous'), /whole rows of 8/);
  });

  it('ranks candidates by lowest gradient among the stored slots, then adds the chosen slot', () => {
    // Slot 3 is empty (its gradient reads 0 and must be ignored).
    const grads = Float32Array.from([0.5, -2, 0.1, 0, -1, 3, -0.5, 2]);
    const slots = Int32Array.from([0, 1, 2, 4, 5, 6, 7]);
    assert.deepEqual(Array.from(fitCandidates(grads, slots, 3, 1)), [1, 4, 6]);
    assert.deepEqual(Array.from(fitCandidates(grads, slots, 3, 7)), [1, 4, 6, 7]);
    assert.deepEqual(Array.from(fitCandidates(grads, slots, 10, 1)), [1, 4, 6, 2, 0, 7, 5]);
  });

  it('flags a fit below the threshold, and a fit that is not a number', () => {
    const rule: OneExampleRule = { score: 'real-vs-superfluous', candidates: 4, threshold: 3 };
    assert.equal(isUnknownByFit(2.999, rule), true);
    assert.equal(isUnknownByFit(3, rule), false);
    assert.equal(isUnknownByFit(NaN, rule), true);
  });
});

describe('score separation', () => {
  it('ROC AUC: 1 when every known score is higher, 0 when every one is lower, ties count one half', () => {
    assert.equal(rocAuc([3, 4, 5], [0, 1, 2]), 1);
    assert.equal(rocAuc([0, 1], [2, 3]), 0);
    assert.equal(rocAuc([1, 1], [1, 1, 1]), 0.5);
    // Against the definition, pair by pair.
    const rng = new Xoshiro128(5);
    const k = Array.from({ length: 37 }, () => Math.round(rng.nextFloat() * 20) / 4 + 1);
    const u = Array.from({ length: 23 }, () => Math.round(rng.nextFloat() * 20) / 4);
    let pairs = 0;
    for (const a of k) for (const b of u) pairs += a > b ? 1 : a === b ? 0.5 : 0;
    assert.ok(Math.abs(rocAuc(k, u) - pairs / (k.length * u.length)) < 1e-12);
    assert.throws(() => rocAuc([], [1]), /both sides/);
  });

  it('puts the threshold in the middle of a clean gap, and at the best trade-off when the samples overlap', () => {
    const clean = chooseThreshold([5, 6, 7], [1, 2, 3]);
    assert.deepEqual(clean, { threshold: 4, unknownFlagged: 1, knownFlagged: 0 });
    // Overlap: below 2.5, 3.6 and 4.75 each flag two more unknown than known (the best); the tie goes to fewer known flagged.
    const mixed = chooseThreshold([3, 4, 5, 6], [1, 2, 3.2, 4.5]);
    assert.deepEqual(mixed, { threshold: 2.5, unknownFlagged: 0.5, knownFlagged: 0 });
    // A budget of known flagged: the best trade-off flags one known score in four, a budget of none settles for less.
    assert.deepEqual(chooseThreshold([1.5, 5, 6, 7], [1, 2, 3, 4]), { threshold: 4.5, unknownFlagged: 1, knownFlagged: 0.25 });
    assert.deepEqual(chooseThreshold([1.5, 5, 6, 7], [1, 2, 3, 4], 0), { threshold: 1.25, unknownFlagged: 0.25, knownFlagged: 0 });
    assert.equal(flaggedBelow([1, 2, 3, 4], 3), 0.5);
    assert.equal(flaggedBelow([], 3), 0);
  });
});

describe('the one-example rule in the model and the engine', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  function engineWith(rule?: OneExampleRule, tasks = 4) {
    const rng = new Xoshiro128(3);
    const masks = Array.from({ length: tasks }, () => randomMask(maskWords(TINY), weightCount(TINY), 0.5, () => rng.nextFloat()));
    const engine = new Engine({ architecture: TINY, seed: SEED, normalization: { mean: 0, std: 1 }, kernels: typescriptKernels, oneExample: rule });
    masks.forEach((m, t) => engine.addTask(`t${t}`, m));
    const x = Float32Array.from({ length: 3 * TINY.inputSize }, () => rng.nextFloat());
    return { engine, masks, x };
  }

  it('scores an example by exact forwards: the best fit over all masks when the candidates cover them', () => {
    const { engine, masks, x } = engineWith();
    const base = generateBaseNetwork(TINY, SEED);
    const fits = engine.oneExampleFits(engine.validate({ inputs: x, batch: 3 }), masks.length);
    fits.forEach((f, e) => {
      const row = x.subarray(e * TINY.inputSize, (e + 1) * TINY.inputSize);
      const expected = Math.max(...masks.map((m) => fitOf(referenceLogits(base, [m], [1], row), TINY.classes, 'real-vs-superfluous')));
      assert.ok(Math.abs(f.fit - expected) < 1e-4, `example ${e}: ${f.fit} vs ${expected}`);
    });
    engine.dispose();
  });

  it('decides unknown by the rule for decisions from one example, and by k · max ν < 1 + ε from a batch', () => {
    const { engine: probe, x } = engineWith();
    const fits = probe.oneExampleFits(probe.validate({ inputs: x, batch: 3 }), 2).map((f) => f.fit);
    probe.dispose();
    // A threshold between the fits of example 0 and example 1 flags exactly the lower one.
    const [lo, hi] = fits[0] < fits[1] ? [0, 1] : [1, 0];
    const { engine } = engineWith({ score: 'real-vs-superfluous', candidates: 2, threshold: (fits[0] + fits[1]) / 2 });
    const ask = (inputs: Float32Array, decideFrom?: 'first' | 'batch' | 'each') =>
      engine.classify(engine.validate({ inputs, batch: inputs.length / TINY.inputSize, inference: decideFrom && { decideFrom } }));
    const each = ask(x, 'each');
    assert.equal(each[lo].task.unknown, true);
    assert.equal(each[hi].task.unknown, false);
    const row = (e: number) => x.slice(e * TINY.inputSize, (e + 1) * TINY.inputSize);
    // A batch of one decides from one example, whatever decideFrom says; `first` decides from example 0.
    assert.equal(ask(row(lo))[0].task.unknown, true);
    assert.equal(ask(row(hi))[0].task.unknown, false);
    const firstLo = Float32Array.from([...row(lo), ...row(hi)]);
    assert.ok(ask(firstLo, 'first').every((p) => p.task.unknown));
    // Binary search decides the same way.
    const binary = engine.classify(engine.validate({ inputs: x, batch: 3, inference: { method: 'binary', decideFrom: 'each' } }));
    assert.equal(binary[lo].task.unknown, true);
    assert.equal(binary[hi].task.unknown, false);
    // From a whole batch of several the paper's test applies: ε = 1/8, k = 4, the rule is not consulted.
    const rows = engine.classify(engine.validate({ inputs: firstLo, batch: 2, inference: { decideFrom: 'batch' } }));
    const expected = 4 * rows[0].task.confidence < 1 + 1 / 8;
    assert.ok(rows.every((p) => p.task.unknown === expected));
    engine.dispose();
  });

  it('refuses a rule that scores by outputs the architecture does not have', () => {
    const arch = { ...TINY, outputs: TINY.classes };
    assert.throws(
      () => new Engine({ architecture: arch, seed: SEED, normalization: { mean: 0, std: 1 }, kernels: typescriptKernels, oneExample: { score: 'real-vs-superfluous', candidates: 4, threshold: 1 } }),
      /scores by real-vs-superfluous/,
    );
  });

  it('is stored in the manifest (unknownTask.oneExample), checked when read, and kept by a later ε', async () => {
    const tmp = await tempDir('supsup-unknown-');
    try {
      const dir = await tinyModel(tmp.dir, 2);
      const oneExample = { score: 'real-vs-superfluous' as const, candidates: 4, threshold: 3.5, calibration: 'test' };
      await setUnknownTaskThreshold(dir, { epsilon: 0.125, calibration: 'paper', oneExample });
      const m = await readManifest(dir);
      assert.deepEqual(m.unknownTask, { epsilon: 0.125, calibration: 'paper', oneExample });
      const bad = (patch: Record<string, unknown>) => () =>
        validateManifest(JSON.parse(JSON.stringify({ ...m, unknownTask: { ...m.unknownTask, oneExample: { ...oneExample, ...patch } } })), 'manifest.json');
      assert.throws(bad({ score: 'energy' }), /oneExample.score must be one of/);
      assert.throws(bad({ candidates: 0 }), /oneExample.candidates must be an integer >= 1/);
      assert.throws(bad({ threshold: 'high' }), /oneExample.threshold must be a finite number/);
      assert.throws(bad({ calibration: '' }), /oneExample.calibration must be a string/);
      assert.throws(bad({ extra: 1 }), /unknown field "extra"/);
    } finally {
      await tmp.remove();
    }
  });

  it('`supsup eval --calibrate-unknown` chooses, measures and stores the rule; `--save-epsilon` keeps it', async () => {
    const tmp = await tempDir('supsup-unknown-');
    try {
      const dir = await tinyModel(tmp.dir, 3);
      const cli = (...args: string[]) => spawnSync(process.execPath, ['bin/supsup.js', 'eval', '--model', dir, '--quiet', '--kernels', 'typescript', ...args], { encoding: 'utf8' });
      const r = cli('--calibrate-unknown', '--each-examples', '3', '--unknown-tasks', '4');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /\| fit < threshold, held out \(seeds from 2000000\) \| [01]\.\d{6} \|/);
      const rule = (await readManifest(dir)).unknownTask?.oneExample;
      assert.ok(rule && Number.isFinite(rule.threshold) && rule.candidates === 4 && rule.score === 'real-vs-superfluous', JSON.stringify(rule));
      assert.match(rule.calibration, /held out .*ROC AUC/);
      const s = cli('--epsilon', '0.3', '--save-epsilon', '--batches', '1', '--batch-size', '4', '--each-examples', '1', '--unknown-tasks', '1', '--unknown-batches', '1', '--methods', 'one-shot-H', '--decide', 'batch', '--curve', '1');
      assert.equal(s.status, 0, s.stderr);
      const after = (await readManifest(dir)).unknownTask;
      assert.equal(after?.epsilon, 0.3);
      assert.deepEqual(after?.oneExample, rule);
      assert.notEqual(cli('--calibrate-unknown', '--unknown-tasks', '0').status, 0);
    } finally {
      await tmp.remove();
    }
  });
});
