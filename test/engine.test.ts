import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type Architecture, layerShapes, maskWords, weightCount } from '../src/core/architecture.ts';
import { generateBaseNetwork } from '../src/core/base-network.ts';
import { Engine } from '../src/core/engine.ts';
import { typescriptKernels } from '../src/core/kernels/typescript-kernels.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { SupermaskNetwork } from '../src/core/supermask-network.ts';
import { DEFAULT_INFERENCE, type InferenceOptions } from '../src/contract/classify.ts';
import { selectBackend } from '../src/platform/backend.ts';
import { TINY, entropyOf, randomMask, referenceLogits, softmax } from './support/reference-mlp.ts';

const SEED = 7;

/**
 * rerank 1: the one-shot gradient's own choice, which these tests check. Re-ranking by exact fit is for trained
 * masks (test/one-example-rerank.test.ts); the disjoint masks below output logits of ±0.5 at most, where a mask
 * blind to the example (all logits 0) fits as well as the one that sees it.
 */
function makeEngine(arch: Architecture, masks: Uint32Array[]): Engine {
  const engine = new Engine({ architecture: arch, seed: SEED, normalization: { mean: 0, std: 1 }, kernels: typescriptKernels, rerank: 1 });
  masks.forEach((m, t) => engine.addTask(`t${t}`, m));
  return engine;
}

function randomInputs(n: number, size: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: n * size }, () => rng.nextFloat());
}

function call(engine: Engine, inputs: Float32Array, extra: { task?: string; inference?: Partial<InferenceOptions> } = {}) {
  return engine.classify(engine.validate({ inputs, batch: inputs.length / engine.architecture.inputSize, ...extra }));
}

/**
 * Masks whose subnetworks are disjoint: task `part` keeps only weights from the `part`-th slice of the inputs
 * into the `part`-th slice of each hidden layer, and that slice into every output. An input that is zero outside
 * slice p drives subnetwork p alone; every other subnetwork has zero activations and so zero gradient.
 * Hidden layers keep only positive weights, so with positive inputs every unit of the subnetwork is alive.
 * Into the superfluous outputs only negative weights are kept, so those logits are negative: scaling a subnetwork
 * up (raising its α) then lowers G, as it lowers H (a bias-free ReLU net is positively homogeneous in α).
 */
function disjointMasks(arch: Architecture, parts: number): Uint32Array[] {
  const sizes = [arch.inputSize, ...arch.hidden, arch.outputs];
  const base = generateBaseNetwork(arch, SEED);
  const slice = (n: number, p: number, i: number) => Math.floor((i * parts) / n) === p;
  return Array.from({ length: parts }, (_, p) => {
    const m = new Uint32Array(maskWords(arch));
    layerShapes(arch).forEach((s, l) => {
      const last = l + 2 === sizes.length;
      for (let i = 0; i < s.in; i++) {
        for (let j = 0; j < s.out; j++) {
          const positive = base.layers[l][i * s.out + j] > 0;
          if (!last && !positive) continue;
          if (last && j >= arch.classes && positive) continue;
          if (slice(s.in, p, i) && (last || slice(s.out, p, j))) {
            const w = s.offset + i * s.out + j;
            m[w >>> 5] |= 1 << (w & 31);
          }
        }
      }
    });
    return m;
  });
}

function inputOnSlice(arch: Architecture, parts: number, p: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: arch.inputSize }, (_, i) => (Math.floor((i * parts) / arch.inputSize) === p ? 0.2 + rng.nextFloat() : 0));
}

describe('engine', () => {
  before(async () => {
    await selectBackend('wasm');
  });

  it('classifies with a given task exactly as the unpacked float reference does', () => {
    const rng = new Xoshiro128(1);
    const P = weightCount(TINY);
    const masks = Array.from({ length: 11 }, () => randomMask(maskWords(TINY), P, 0.5, () => rng.nextFloat()));
    const engine = makeEngine(TINY, masks);
    const base = generateBaseNetwork(TINY, SEED);
    const x = randomInputs(5, TINY.inputSize, rng);
    for (const t of [0, 7, 10]) {
      const preds = call(engine, x, { task: `t${t}` });
      preds.forEach((p, e) => {
        const alpha = masks.map((_, i) => (i === t ? 1 : 0));
        const logits = referenceLogits(base, masks, alpha, x.subarray(e * TINY.inputSize, (e + 1) * TINY.inputSize));
        const expected = softmax(logits.slice(0, TINY.classes));
        p.probabilities.forEach((v, c) => assert.ok(Math.abs(v - expected[c]) < 1e-4, `task ${t} ex ${e} class ${c}: ${v} vs ${expected[c]}`));
        assert.equal(p.label, expected.indexOf(Math.max(...expected)));
        assert.deepEqual(p.task, { id: `t${t}`, inferred: false, confidence: 1, unknown: false });
      });
    }
    engine.dispose();
  });

  it('computes ∂H/∂α_i through the bit kernel equal to finite differences of the float reference', () => {
    const rng = new Xoshiro128(2);
    const P = weightCount(TINY);
    const k = 6;
    const masks = Array.from({ length: k }, () => randomMask(maskWords(TINY), P, 0.5, () => rng.nextFloat()));
    const base = generateBaseNetwork(TINY, SEED);
    const net = new SupermaskNetwork(base, typescriptKernels);
    masks.forEach((m) => net.addMask(m));
    const batch = 3;
    const xs = randomInputs(batch, TINY.inputSize, rng);
    const x = tf.tensor2d(xs, [batch, TINY.inputSize]);
    const grads = net.slotGradients(net.superposed(), x, 'entropy', false);
    const perExample = net.slotGradients(net.superposed(), x, 'entropy', true);
    x.dispose();
    const meanH = (alpha: number[]) => {
      let h = 0;
      for (let e = 0; e < batch; e++) h += entropyOf(referenceLogits(base, masks, alpha, xs.subarray(e * TINY.inputSize, (e + 1) * TINY.inputSize)));
      return h / batch;
    };
    const step = 1e-4;
    for (let i = 0; i < k; i++) {
      const up = masks.map((_, t) => 1 / k + (t === i ? step : 0));
      const down = masks.map((_, t) => 1 / k - (t === i ? step : 0));
      const numeric = (meanH(up) - meanH(down)) / (2 * step);
      assert.ok(Math.abs(grads[i] - numeric) < 1e-3 + 1e-2 * Math.abs(numeric), `slot ${i}: kernel ${grads[i]} vs numeric ${numeric}`);
      const width = net.bank.slotCapacity;
      const mean = (perExample[i] + perExample[width + i] + perExample[2 * width + i]) / batch;
      assert.ok(Math.abs(mean - grads[i]) < 1e-4 + 1e-3 * Math.abs(grads[i]), `per-example rows average to the batch gradient`);
    }
    net.dispose();
  });

  for (const objective of ['entropy', 'superfluous'] as const) {
    for (const method of ['one-shot', 'binary'] as const) {
      it(`infers the task whose subnetwork alone sees the data (${method}, ${objective}), per example too`, () => {
        const parts = 4;
        const rng = new Xoshiro128(3);
        const masks = disjointMasks(TINY, parts);
        // Pad the bank with empty masks: their gradient is exactly 0 and they must never win.
        const engine = makeEngine(TINY, [...masks, new Uint32Array(maskWords(TINY)), new Uint32Array(maskWords(TINY))]);
        const order = [2, 0, 3, 1, 2];
        const x = new Float32Array(order.length * TINY.inputSize);
        order.forEach((p, e) => x.set(inputOnSlice(TINY, parts, p, rng), e * TINY.inputSize));
        const each = call(engine, x, { inference: { method, objective, decideFrom: 'each' } });
        assert.deepEqual(each.map((p) => p.task.id), order.map((p) => `t${p}`));
        assert.ok(each.every((p) => p.task.inferred));
        const first = call(engine, x, { inference: { method, objective, decideFrom: 'first' } });
        assert.ok(first.every((p) => p.task.id === 't2'), 'decideFrom first applies example 0’s task to all');
        const batchOfOne = x.slice(TINY.inputSize, 3 * TINY.inputSize); // two examples of slices 0 and 3
        const agreeing = new Float32Array([...batchOfOne.subarray(0, TINY.inputSize), ...batchOfOne.subarray(0, TINY.inputSize)]);
        const batch = call(engine, agreeing, { inference: { method, objective, decideFrom: 'batch' } });
        assert.ok(batch.every((p) => p.task.id === 't0'));
        engine.dispose();
      });
    }
  }

  it('flags data as unknown when every stored mask explains it equally', () => {
    const rng = new Xoshiro128(4);
    const m = randomMask(maskWords(TINY), weightCount(TINY), 0.5, () => rng.nextFloat());
    const engine = makeEngine(TINY, [m, m.slice(), m.slice(), m.slice()]);
    const [p] = call(engine, randomInputs(1, TINY.inputSize, rng));
    assert.equal(p.task.unknown, true);
    assert.ok(Math.abs(p.task.confidence - 0.25) < 1e-6);
    engine.dispose();
  });

  it('handles k = 0, k = 1, removal and an unknown task id', () => {
    const rng = new Xoshiro128(5);
    const engine = makeEngine(TINY, []);
    const x = randomInputs(2, TINY.inputSize, rng);
    assert.throws(() => call(engine, x), /no tasks/);
    engine.addTask('only', randomMask(maskWords(TINY), weightCount(TINY), 0.5, () => rng.nextFloat()));
    const preds = call(engine, x);
    assert.ok(preds.every((p) => p.task.id === 'only' && p.task.inferred && !p.task.unknown));
    assert.throws(() => call(engine, x, { task: 'nope' }), /task "nope" does not exist/);
    const masks = disjointMasks(TINY, 2);
    engine.addTask('a', masks[0]);
    engine.addTask('b', masks[1]);
    engine.removeTask('only');
    assert.deepEqual(engine.tasks().map((t) => t.id), ['a', 'b']);
    const onB = inputOnSlice(TINY, 2, 1, rng);
    assert.equal(call(engine, onB)[0].task.id, 'b');
    assert.throws(() => engine.addTask('a', masks[0]), /already exists/);
    assert.throws(() => engine.addTask('bad id!', masks[0]), /must match/);
    engine.dispose();
  });

  it('merged inferred calls (segments) decide each call from its own examples, as separate calls do', () => {
    const rng = new Xoshiro128(41);
    const masks = Array.from({ length: 11 }, () => randomMask(maskWords(TINY), weightCount(TINY), 0.5, () => rng.nextFloat()));
    const engine = makeEngine(TINY, masks);
    try {
      for (const decideFrom of ['batch', 'first'] as const) {
        for (const objective of ['entropy', 'superfluous'] as const) {
          const segments = [1, 3, 1, 2, 1, 1];
          const parts = segments.map((n) => randomInputs(n, TINY.inputSize, rng));
          const inference = { decideFrom, objective };
          const separate = parts.flatMap((x) => call(engine, x, { inference }));
          const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
          parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
          const merged = engine.classify({ ...engine.validate({ inputs: all, batch: all.length / TINY.inputSize, inference }), segments });
          assert.deepEqual(merged.map((p) => p.task?.id), separate.map((p) => p.task?.id), `${decideFrom} ${objective}: the tasks`);
          merged.forEach((p, i) => {
            assert.ok(Math.abs(p.task!.confidence - separate[i].task!.confidence) < 1e-5, `${decideFrom} ${objective} row ${i}: confidence`);
            assert.equal(p.label, separate[i].label);
          });
          assert.ok(new Set(separate.map((p) => p.task?.id)).size > 1, 'the segments do not all pick one task');
        }
      }
    } finally {
      engine.dispose();
    }
  });

  it('rejects malformed calls with a message that says what is wrong', () => {
    const engine = makeEngine(TINY, disjointMasks(TINY, 2));
    const v = (inputs: Float32Array, batch: number, more: object = {}) => () => engine.validate({ inputs, batch, ...more });
    assert.throws(v(new Float32Array(19), 1), /each example must have 20 values/);
    assert.throws(v(new Float32Array(0), 0), /at least one example/);
    assert.throws(v(Float32Array.of(...new Array(19).fill(0), NaN), 1), /inputs\[0\]\[19\] is not a finite number/);
    assert.throws(v(new Float32Array(20), 1, { inference: { method: 'ternary' } }), /inference.method must be one of/);
    assert.throws(v(new Float32Array(20), 1, { inference: { speed: 1 } }), /unknown inference option "speed"/);
    assert.throws(v(new Float32Array(20), 1, { topK: 9 }), /topK must be an integer from 0 to 4/);
    assert.throws(v(new Float32Array(20), 1, { task: 3 }), /task must be a string/);
    assert.equal(engine.validate({ inputs: new Float32Array(20), batch: 1 }).inference.method, DEFAULT_INFERENCE.method);
    engine.dispose();
  });
});
