// Re-ranking a task decided from one example by exact forwards (core/one-example.ts): on constructed gradients
// and fits; then on the served default model (250 PermutedMNIST tasks, full MNIST), on test digits whose one-shot
// gradient ranks a foreign mask first while the exact forwards of its top 4 find the right one, through the
// engine (first, each, merged segments) and through REST, gRPC and the Open Inference Protocol.
import type { KernelPreference } from '../src/platform/preferences.ts';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { DEFAULT_RERANK, type Objective } from '../src/contract/classify.ts';
import { type Engine } from '../src/core/engine.ts';
import { bestOfFirst, type OneExampleCheck, refineOneExample } from '../src/core/one-example.ts';
import { loadDataset } from '../src/data/datasets.ts';
import { taskDataset } from '../src/data/transforms.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import { parseServeConfig } from '../src/service/config.ts';
import { LOADER_OPTIONS, PROTO_PATH } from '../src/service/grpc/server.ts';
import { type DynamicClient, unary } from './support/grpc-calls.ts';
import { type TestService, http, startTestService, testConfig } from './support/service-fixture.ts';

describe('refineOneExample on constructed gradients and fits', () => {
  // Slots 0..4; the gradient ranks 2, 0, 4, 1, 3 (lowest first). ν = softmax(−g): slot 2 holds the top.
  const slots = Int32Array.from([0, 1, 2, 3, 4]);
  const grads = Float32Array.from([-1, 0.5, -2, 1, 0]);
  const nu = (slot: number) => Math.exp(-grads[slot]) / Array.from(grads).reduce((s, g) => s + Math.exp(-g), 0);
  const top = { slot: 2, confidence: nu(2), unknown: false };
  // Exact fits by slot: slot 4 (third by the gradient) fits the example best, slot 1 (fourth) next.
  const fitBySlot = [1, 3, 0, -5, 4];
  const counting = (rule?: OneExampleCheck['rule']) => {
    const asked: number[][] = [];
    const check: OneExampleCheck = { rule, fits: (s, row) => (asked.push([row, ...s]), Float64Array.from(s, (slot) => fitBySlot[slot])) };
    return { check, asked };
  };

  it('rerank 1 keeps the gradient top-1; rerank m picks the best fit among its top m, with that mask’s ν', () => {
    const one = counting();
    assert.equal(refineOneExample(top, grads, slots, 7, one.check, 1), top);
    const two = refineOneExample(top, grads, slots, 7, one.check, 2);
    assert.equal(two.slot, 0, 'top 2 = slots 2, 0: slot 0 fits better');
    const three = refineOneExample(top, grads, slots, 7, one.check, 3);
    assert.equal(three.slot, 4);
    assert.ok(Math.abs(three.confidence - nu(4)) < 1e-6, `${three.confidence} vs ν ${nu(4)}`);
    assert.equal(three.unknown, false, 'without a calibrated rule the gradient’s verdict stands');
    assert.equal(three.fit, undefined);
    assert.equal(refineOneExample(top, grads, slots, 7, one.check, 99).slot, 4, 'more than k: all of them');
    assert.deepEqual(one.asked, [[7, 2, 0], [7, 2, 0, 4], [7, 2, 0, 4, 1, 3]], 'one exact forward per candidate, for the call’s row; none for rerank 1');
  });

  it('shares the forwards with the unknown rule: one fits call for max(m, the rule’s candidates)', () => {
    const rule = { score: 'real-vs-superfluous' as const, candidates: 4, threshold: 3.5 };
    const one = counting(rule);
    // Rule alone (rerank 1): the best fit of the top 4 is slot 4's 4 ≥ 3.5: known; the choice stays slot 2.
    const plain = refineOneExample(top, grads, slots, 0, one.check, 1);
    assert.deepEqual([plain.slot, plain.fit, plain.unknown], [2, 4, false]);
    const reranked = refineOneExample(top, grads, slots, 0, one.check, 2);
    assert.deepEqual([reranked.slot, reranked.fit, reranked.unknown], [0, 4, false]);
    assert.deepEqual(one.asked, [[0, 2, 0, 4, 1], [0, 2, 0, 4, 1]], 'the rule’s 4 candidates cover the top 2: no extra forward');
    const strict = refineOneExample(top, grads, slots, 0, counting({ ...rule, threshold: 4.5 }).check, 4);
    assert.deepEqual([strict.slot, strict.unknown], [4, true], 'no candidate fits well enough: unknown, whatever was chosen');
    // The rule's set is its own top candidates plus the chosen mask, as calibrated, even when m reaches further.
    const narrow = counting({ ...rule, candidates: 1, threshold: 3.5 });
    const far = refineOneExample(top, grads, slots, 0, narrow.check, 3);
    assert.deepEqual([far.slot, far.fit, far.unknown], [4, 4, false]);
    assert.deepEqual(narrow.asked, [[0, 2, 0, 4]]);
  });

  it('keeps a choice made outside the gradient top (binary search) with rerank 1', () => {
    const chosen = { slot: 3, confidence: nu(3), unknown: false };
    const one = counting({ score: 'real-vs-superfluous', candidates: 2, threshold: 0 });
    const d = refineOneExample(chosen, grads, slots, 0, one.check, 1);
    assert.equal(d.slot, 3);
    assert.equal(d.fit, 1, 'best of slots 2, 0 and the chosen 3: slot 0');
    assert.deepEqual(one.asked, [[0, 2, 0, 3]]);
  });

  it('bestOfFirst: the first of the highest among the first n', () => {
    assert.equal(bestOfFirst([1, 3, 3, 9], 3), 1);
    assert.equal(bestOfFirst([5], 1), 0);
  });
});

// The served default model, and first examples of its eval batches (`supsup eval`'s seed-1 orders) where the
// one-shot gradient's top-1 is another task's mask and the top 4 re-ranked by exact fit is right.
const DEFAULT_MODEL = path.resolve('models/permuted-mnist60k-lenet-lr3e-4');
const CASES: { task: string; index: number; objective: Objective; gradientPick: string }[] = [
  { task: 'permuted-68', index: 5369, objective: 'entropy', gradientPick: 'permuted-194' },
  { task: 'permuted-77', index: 3843, objective: 'entropy', gradientPick: 'permuted-101' },
  { task: 'permuted-105', index: 9313, objective: 'entropy', gradientPick: 'permuted-2' },
  { task: 'permuted-41', index: 8544, objective: 'superfluous', gradientPick: 'permuted-81' },
  { task: 'permuted-45', index: 8513, objective: 'superfluous', gradientPick: 'permuted-141' },
];
const H_CASES = CASES.filter((c) => c.objective === 'entropy');

let examples: Map<string, Float32Array>;
before(async () => {
  const { manifest, engine } = await openEngine(DEFAULT_MODEL, { backend: 'wasm', kernels: 'typescript' });
  engine.dispose();
  const test = loadDataset('mnist').test;
  const size = test.width * test.height;
  examples = new Map(
    CASES.map((c) => {
      const ds = taskDataset(manifest.tasks.find((t) => t.id === c.task)!.transform, test);
      return [c.task, ds.images.slice(c.index * size, (c.index + 1) * size)];
    }),
  );
});
const rows = (cases: typeof CASES) => {
  const out = new Float32Array(cases.length * 784);
  cases.forEach((c, i) => out.set(examples.get(c.task)!, i * 784));
  return out;
};

for (const kernels of ['typescript', 'auto'] as KernelPreference[]) {
  describe(`re-ranking on the served default model (${kernels} kernels)`, () => {
    let engine: Engine;
    before(async () => void ({ engine } = await openEngine(DEFAULT_MODEL, { backend: 'wasm', kernels })));
    after(() => engine?.dispose());
    const classify = (inputs: Float32Array, batch: number, inference: Record<string, unknown>, rerank: number, segments?: number[]) => {
      const call = engine.validate({ inputs, batch, inference });
      call.inference.rerank = rerank;
      return engine.classify(segments ? { ...call, segments } : call).map((p) => p.task.id);
    };

    it(`serves re-ranking by default (top ${DEFAULT_RERANK})`, () => assert.equal(engine.limits.rerank, DEFAULT_RERANK));

    it("one example: the gradient's top-1 is a foreign task, the exact forwards of its top 4 find the right one", () => {
      for (const c of CASES) {
        const one = examples.get(c.task)!;
        assert.deepEqual(classify(one, 1, { objective: c.objective }, 1), [c.gradientPick], `${c.task} plain`);
        assert.deepEqual(classify(one, 1, { objective: c.objective }, 4), [c.task], `${c.task} re-ranked`);
        assert.deepEqual(classify(one, 1, { objective: c.objective, decideFrom: 'first' }, 4), [c.task]);
      }
    });

    it('each example alone, and merged calls deciding per segment, are re-ranked the same way', () => {
      const x = rows(H_CASES);
      assert.deepEqual(classify(x, H_CASES.length, { decideFrom: 'each' }, 4), H_CASES.map((c) => c.task));
      assert.deepEqual(classify(x, H_CASES.length, { decideFrom: 'each' }, 1), H_CASES.map((c) => c.gradientPick));
      const merged = classify(x, H_CASES.length, { decideFrom: 'first' }, 4, H_CASES.map(() => 1));
      assert.deepEqual(merged, H_CASES.map((c) => c.task));
      // A batch of 3 deciding from its first example gives all three the first example's task.
      assert.deepEqual(classify(x, H_CASES.length, { decideFrom: 'first' }, 4), H_CASES.map(() => H_CASES[0].task));
    });

    it('leaves decisions from a whole batch and binary search as they were', () => {
      const x = rows(H_CASES);
      assert.deepEqual(classify(x, H_CASES.length, { decideFrom: 'batch' }, 4), classify(x, H_CASES.length, { decideFrom: 'batch' }, 1));
      const one = examples.get(H_CASES[0].task)!;
      assert.deepEqual(classify(one, 1, { method: 'binary' }, 4), classify(one, 1, { method: 'binary' }, 1));
    });
  });
}

describe('serving the re-ranked one-example decision', () => {
  let reranked: TestService;
  let plain: TestService;
  let client: DynamicClient;
  before(async () => {
    reranked = await startTestService(testConfig(DEFAULT_MODEL, { kernels: 'auto', rerank: undefined }));
    plain = await startTestService(testConfig(DEFAULT_MODEL, { kernels: 'auto', rerank: 1 }));
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
    client = new pkg.supsup.v1.Classifier(`127.0.0.1:${reranked.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    for (const s of [reranked, plain]) await s?.close();
  });

  it('serve --rerank: default 4, at least 1', () => {
    const model = ['--model', DEFAULT_MODEL];
    assert.equal(parseServeConfig(model, {}).rerank, DEFAULT_RERANK);
    assert.equal(parseServeConfig([...model, '--rerank', '1'], {}).rerank, 1);
    assert.equal(parseServeConfig(model, { SUPSUP_RERANK: '8' }).rerank, 8);
    assert.throws(() => parseServeConfig([...model, '--rerank', '0'], {}), /--rerank: must be at least 1, got "0"/);
  });

  it('REST /classify and GET /model', async () => {
    const c = H_CASES[0];
    const ask = (s: TestService, body: Record<string, unknown>) => http('POST', `${s.url}/classify`, body);
    const inputs = [Array.from(examples.get(c.task)!)];
    const a = await ask(reranked, { inputs });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.predictions[0].task.id, c.task);
    assert.equal((await ask(plain, { inputs })).body.predictions[0].task.id, c.gradientPick);
    const each = await ask(reranked, { inputs: H_CASES.map((h) => Array.from(examples.get(h.task)!)), inference: { decideFrom: 'each' } });
    assert.deepEqual(each.body.predictions.map((p: any) => p.task.id), H_CASES.map((h) => h.task));
    assert.equal((await http('GET', `${reranked.url}/model`)).body.limits.rerank, DEFAULT_RERANK);
    assert.equal((await http('GET', `${plain.url}/model`)).body.limits.rerank, 1);
  });

  it('gRPC Infer and OIP infer', async () => {
    const c = CASES.find((k) => k.objective === 'superfluous')!;
    const x = examples.get(c.task)!;
    const packed = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    const g = await unary(client, 'Infer', { inputs: packed, shape: [1, 784], inference: { objective: 'superfluous' } });
    assert.equal(g.predictions[0].task.id, c.task);
    const oip = (s: TestService) =>
      http('POST', `${s.url}/v2/models/supsup/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 784], data: Array.from(examples.get(H_CASES[1].task)!) }] });
    const task = (body: any) => body.outputs.find((o: { name: string }) => o.name === 'task').data;
    const [r, p] = await Promise.all([oip(reranked), oip(plain)]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(task(r.body), [H_CASES[1].task]);
    assert.deepEqual(task(p.body), [H_CASES[1].gradientPick]);
  });
});
