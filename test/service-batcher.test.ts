import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ClassifyCall, Prediction } from '../src/contract/classify.ts';
import { SupsupError } from '../src/contract/errors.ts';
import { DEFAULT_INFERENCE } from '../src/contract/classify.ts';
import { Batcher } from '../src/runtime/batcher.ts';
import { mergeCalls, mergeKey } from '../src/runtime/merge.ts';

/** The queue in front of the engine, with a fake engine that records each pass. */
function call(batch: number, first: number, extra: Partial<ClassifyCall> = {}): ClassifyCall {
  return { inputs: Float32Array.from({ length: batch }, (_, i) => first + i), batch, inference: { ...DEFAULT_INFERENCE }, topK: 0, ...extra };
}

function fakeEngine(delayMs = 5) {
  const passes: ClassifyCall[] = [];
  const run = async (c: ClassifyCall): Promise<Prediction[]> => {
    passes.push(c);
    await new Promise((r) => setTimeout(r, delayMs));
    return Array.from(c.inputs, (v) => ({
      label: v,
      probabilities: [0.5, 0.3, 0.2],
      ...(c.topK ? { topK: [0, 1, 2].slice(0, c.topK).map((l) => ({ label: l, probability: 0 })) } : {}),
      task: { id: c.task ?? 'inferred', inferred: !c.task, confidence: 1, unknown: false },
    }));
  };
  return { passes, run };
}

describe('batcher', () => {
  it('merges queued calls for the same task (up to maxBatch) and splits the answers back in order', async () => {
    const engine = fakeEngine();
    const b = new Batcher({ maxBatch: 5, maxQueue: 10, maxWaitMs: 0 }, engine.run);
    const first = b.submit(call(1, 100, { task: 'a' }), 1000); // runs alone: the engine is idle
    const rest = [
      b.submit(call(2, 0, { task: 'a', topK: 2 }), 1000),
      b.submit(call(1, 10, { task: 'b' }), 1000),
      b.submit(call(2, 20, { task: 'a' }), 1000),
      b.submit(call(2, 30, { task: 'a', topK: 1 }), 1000), // would make 6 > maxBatch: next pass
    ];
    const answers = await Promise.all([first, ...rest]);
    assert.deepEqual(engine.passes.map((p) => [p.task, Array.from(p.inputs)]), [
      ['a', [100]],
      ['a', [0, 1, 20, 21]],
      ['b', [10]],
      ['a', [30, 31]],
    ]);
    assert.deepEqual(answers.map((a) => a.map((p) => p.label)), [[100], [0, 1], [10], [20, 21], [30, 31]]);
    assert.deepEqual(answers[1].map((p) => p.topK?.length), [2, 2]);
    assert.deepEqual(answers[3].map((p) => p.topK), [undefined, undefined], 'topK trimmed to what each call asked');
  });

  it('merges one-shot calls that decide from their first example or batch as segments; never binary search from a batch', () => {
    const first = { inference: { ...DEFAULT_INFERENCE, decideFrom: 'first' as const } };
    assert.equal(mergeKey(call(1, 0)), mergeKey(call(3, 0)));
    assert.notEqual(mergeKey(call(1, 0)), mergeKey(call(1, 0, first)));
    assert.equal(mergeKey(call(1, 0, { inference: { ...DEFAULT_INFERENCE, method: 'binary' } })), null);
    assert.deepEqual(mergeCalls([call(1, 0), call(3, 1), call(2, 5)]).segments, [1, 3, 2]);
    assert.equal(mergeCalls([call(1, 0, { task: 'a' }), call(2, 1, { task: 'a' })]).segments, undefined);
    assert.equal(mergeKey(call(1, 0, { inference: { ...DEFAULT_INFERENCE, decideFrom: 'each' } })), mergeKey(call(3, 0, { inference: { ...DEFAULT_INFERENCE, decideFrom: 'each' } })));
    assert.notEqual(mergeKey(call(1, 0, { inference: { ...DEFAULT_INFERENCE, decideFrom: 'each' } })), mergeKey(call(1, 0, { inference: { ...DEFAULT_INFERENCE, decideFrom: 'each', method: 'binary' } })));
  });

  it('waits up to maxWaitMs for company, and not at all once flushed', async () => {
    const engine = fakeEngine(1);
    const b = new Batcher({ maxBatch: 100, maxQueue: 10, maxWaitMs: 60 }, engine.run);
    const start = performance.now();
    const a = b.submit(call(1, 0, { task: 't' }), 1000);
    await new Promise((r) => setTimeout(r, 20));
    const c = b.submit(call(1, 1, { task: 't' }), 1000);
    await Promise.all([a, c]);
    assert.equal(engine.passes.length, 1);
    assert.ok(performance.now() - start >= 55);
    const d = b.submit(call(1, 2, { task: 't' }), 1000);
    b.flush();
    await d;
    assert.equal(engine.passes.length, 2);
  });

  it('refuses at once when the queue is full, and fails calls past their deadline', async () => {
    const engine = fakeEngine(50);
    const b = new Batcher({ maxBatch: 10, maxQueue: 2, maxWaitMs: 0 }, engine.run);
    const running = b.submit(call(1, 0), 1000);
    const queued = [b.submit(call(1, 1), 1000), b.submit(call(1, 2), 10)];
    assert.equal(b.depth, 2);
    assert.throws(() => b.submit(call(1, 3), 1000), (e: SupsupError) => e.code === 'resource_exhausted');
    await assert.rejects(queued[1], (e: SupsupError) => e.code === 'deadline_exceeded' && /deadline of 10 ms/.test(e.message));
    assert.equal(b.depth, 1);
    await Promise.all([running, queued[0]]);
    assert.deepEqual(engine.passes.map((p) => p.inputs[0]), [0, 1]);
    const slow = b.submit(call(1, 5), 10); // times out while running: its late answer is dropped
    await assert.rejects(slow, (e: SupsupError) => e.code === 'deadline_exceeded');
    await b.idle();
  });

  it('fails every call of a pass that the engine refused, and carries on', async () => {
    let fail = true;
    const b = new Batcher({ maxBatch: 10, maxQueue: 10, maxWaitMs: 0 }, async (c) => {
      if (fail) {
        fail = false;
        throw new SupsupError('not_found', 'task "gone" does not exist');
      }
      return fakeEngine(0).run(c);
    });
    await assert.rejects(b.submit(call(1, 0, { task: 'gone' }), 1000), /does not exist/);
    assert.equal((await b.submit(call(1, 7, { task: 'x' }), 1000))[0].label, 7);
  });
});
