/**
 * TensorFlow.js loaded on first use (core/tfjs.ts): the serving main thread's modules load none of it, and an engine
 * opened with its backend deferred (as the engine worker opens it) answers given tasks from the bits without it, then
 * starts it for the first pass that needs it and answers as an engine opened with tfjs up front. This file runs in a
 * process of its own (node --test), so what it sees loaded is what these modules load.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { TfjsNotStarted, deferTfjs, tf, tfjsDeferred, tfjsLoaded, withTfjs } from '../src/core/tfjs.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import '../src/runtime/model-runtime.ts';
import '../src/service/config.ts';
import { TINY, randomExamples, tempDir, tinyModel } from './support/service-fixture.ts';

const native = loadNativeAddon();
/** Whether any TensorFlow.js package has been loaded into this process (CommonJS, so it sits in require's cache). */
const tfjsInCache = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('@tensorflow'));

describe('TensorFlow.js on first use', { skip: native.addon ? false : native.reason }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;
  const x = randomExamples(3, TINY.inputSize, 11).flat;

  before(async () => {
    tmp = await tempDir('supsup-lazy-tfjs-');
    dir = await tinyModel(tmp.dir, 5);
  });
  after(() => tmp?.remove());

  it('the serving main thread (config, runtime, REST and gRPC servers) loads none of it', () => {
    assert.equal(tfjsLoaded(), false);
    assert.equal(tfjsInCache(), false, 'a TensorFlow.js package was loaded by importing the serving modules');
  });

  it('an engine opened with the backend deferred answers given tasks without it, then starts it for an inferred pass', async () => {
    const lazy = await openEngine(dir, { backend: 'wasm', kernels: 'native', deferTfjs: true });
    try {
      assert.equal(lazy.backend.name, 'wasm');
      assert.equal(tfjsDeferred(), true);
      const given = lazy.engine.classify(lazy.engine.validate({ inputs: x, batch: 3, task: 'random-2' }));
      assert.equal(given.length, 3);
      assert.equal(tfjsInCache(), false, 'a given-task call from the bits loaded TensorFlow.js');

      const inferredCall = lazy.engine.validate({ inputs: x, batch: 3 });
      assert.throws(() => lazy.engine.classify(inferredCall), TfjsNotStarted);
      const inferred = await withTfjs(() => lazy.engine.classify(inferredCall));
      assert.equal(tfjsDeferred(), false);
      assert.equal(tfjsLoaded(), true);

      // The same answers as an engine that started tfjs up front.
      const eager = await openEngine(dir, { backend: 'wasm', kernels: 'native' });
      try {
        assert.deepEqual(inferred, eager.engine.classify(inferredCall));
        assert.deepEqual(given, eager.engine.classify(eager.engine.validate({ inputs: x, batch: 3, task: 'random-2' })));
      } finally {
        eager.engine.dispose();
      }
    } finally {
      lazy.engine.dispose();
    }
  });

  it('a deferred backend that fails to start fails each pass that needs it with its reason', async () => {
    deferTfjs('broken', async () => {
      throw new Error('no such backend here');
    });
    await assert.rejects(
      withTfjs(() => tf.getBackend()),
      /no such backend here/,
    );
    await assert.rejects(
      withTfjs(() => tf.getBackend()),
      (e: Error) => e instanceof TfjsNotStarted && e.message === 'TensorFlow.js backend "broken" failed to start: no such backend here',
    );
    assert.equal(tfjsDeferred(), false);
  });
});

