/**
 * Small given-task calls answered on the main thread from the engine worker's shared bank (runtime/inline-given.ts):
 * the same answers as the engine, no message to the worker, the bank followed through adds (growth included) and
 * removals, and a task being removed is never answered inline.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Prediction } from '../src/contract/classify.ts';
import { maskWords, weightCount } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import { ModelRuntime } from '../src/runtime/model-runtime.ts';
import { INLINE_MAX_BATCH } from '../src/runtime/inline-given.ts';
import { TINY, randomExamples, tempDir, tinyModel } from './support/service-fixture.ts';
import { randomMask } from './support/reference-mlp.ts';

const native = loadNativeAddon();
const quiet = { info() {}, warn() {}, error() {} };

describe('given-task calls inline on the main thread', { skip: native.addon ? false : native.reason }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;
  let runtime: ModelRuntime;
  /** classify ops the runtime sent to the worker. */
  let workerPasses = 0;
  const x = randomExamples(INLINE_MAX_BATCH + 1, TINY.inputSize, 7).flat;

  before(async () => {
    tmp = await tempDir('supsup-inline-');
    dir = await tinyModel(tmp.dir, 3);
    runtime = await ModelRuntime.open(
      { dir, backend: 'wasm', kernels: 'native', maxBatch: 64, maxQueue: 16, admissionWaitMs: 0, maxWaitMs: 0, maxEngineRestarts: 0, engineRestartDelayMs: 100 },
      quiet,
    );
    const client = (runtime as any).client;
    const request = client.request.bind(client);
    client.request = (req: { op: string }, transfer?: ArrayBuffer[]) => {
      if (req.op === 'classify') workerPasses++;
      return request(req, transfer);
    };
  });
  after(async () => {
    await runtime?.close();
    await tmp?.remove();
  });

  const call = (task: string, batch: number) => runtime.validate({ inputs: x.slice(0, batch * TINY.inputSize), batch, task });
  const classify = (task: string, batch: number) => runtime.classify(call(task, batch), 10_000);

  /** What the engine itself answers for the model directory as it now stands. */
  async function expected(task: string, batch: number): Promise<Prediction[]> {
    const { engine } = await openEngine(dir, { backend: 'wasm', kernels: 'native' });
    try {
      return engine.classify(engine.validate({ inputs: x.slice(0, batch * TINY.inputSize), batch, task }));
    } finally {
      engine.dispose();
    }
  }

  it('answers as the engine does without a message to the worker; a larger call goes to the worker', async () => {
    for (const task of ['random-0', 'random-2']) {
      for (const batch of [1, INLINE_MAX_BATCH]) {
        const before = workerPasses;
        assert.deepEqual(await classify(task, batch), await expected(task, batch), `${task} batch ${batch}`);
        assert.equal(workerPasses, before, `${task} batch ${batch} ran inline`);
      }
    }
    const before = workerPasses;
    assert.deepEqual(await classify('random-1', INLINE_MAX_BATCH + 1), await expected('random-1', INLINE_MAX_BATCH + 1));
    assert.equal(workerPasses, before + 1, 'batch past the inline limit ran in the worker');
  });

  it('follows the bank through adds that grow it, and through removals', async () => {
    const rng = new Xoshiro128(11);
    const mask = () => randomMask(maskWords(TINY), weightCount(TINY), 0.5, () => rng.nextFloat());
    // 3 tasks fill one 8-slot block; 8 more grow the bank into a new buffer.
    for (let i = 0; i < 8; i++) await runtime.addTask({ id: `new${i}`, name: `new ${i}`, transform: { kind: 'identity' } }, mask());
    const before = workerPasses;
    for (const task of ['random-0', 'new0', 'new7']) assert.deepEqual(await classify(task, 2), await expected(task, 2), task);
    await runtime.removeTask('new3');
    assert.throws(() => call('new3', 1), /does not exist/);
    await runtime.addTask({ id: 'again', name: 'again', transform: { kind: 'identity' } }, mask()); // takes the freed slot
    for (const task of ['again', 'new4']) assert.deepEqual(await classify(task, 3), await expected(task, 3), task);
    assert.equal(workerPasses, before, 'all ran inline');
  });

  it('a task being removed is answered by the worker, in order with the removal', async () => {
    const removal = runtime.removeTask('random-2');
    const answer = classify('random-2', 1); // validated while the removal is on its way: the worker refuses it after removing
    await assert.rejects(answer, (e: Error & { code?: string }) => e.code === 'not_found');
    await removal;
    await assert.rejects(async () => classify('random-2', 1), /does not exist/);
  });
});
