/**
 * The load's density check counted on the bank (open-engine.ts with the addon's kernels: Engine.setBitCounts after
 * the last add, instead of a popcount per mask as it is verified) counts what popcount counts, and a manifest
 * density that does not match its mask is refused with the same error, whichever kernels load the model.
 */
import type { KernelPreference } from '../src/platform/preferences.ts';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { popcount } from '../src/core/mask-bank.ts';
import { ModelFileError } from '../src/model/errors.ts';
import { serializeManifest } from '../src/model/manifest.ts';
import { loadModel, readManifest } from '../src/model/model-store.ts';
import { loadNativeAddon } from '../src/platform/native-addon.ts';
import { openEngine } from '../src/runtime/open-engine.ts';
import { tempDir, tinyModel } from './support/service-fixture.ts';

const native = loadNativeAddon();
const KERNELS: KernelPreference[] = native.addon ? ['native', 'typescript'] : ['typescript'];

describe('density check at load', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let dir: string;

  before(async () => {
    tmp = await tempDir('supsup-density-');
    dir = await tinyModel(tmp.dir, 11);
  });
  after(() => tmp?.remove());

  for (const kernels of KERNELS) {
    it(`${kernels} kernels: setBitCounts is each mask's popcount, also after a removal`, async () => {
      const { masks } = await loadModel(dir);
      const { engine } = await openEngine(dir, { backend: 'wasm', kernels, deferTfjs: true });
      try {
        let count = engine.setBitCounts();
        for (const [id, mask] of masks) assert.equal(count(id), popcount(mask), id);
        engine.removeTask('random-3');
        count = engine.setBitCounts();
        for (const [id, mask] of masks) if (id !== 'random-3') assert.equal(count(id), popcount(mask), id);
        assert.throws(() => count('random-3'), /random-3/);
      } finally {
        engine.dispose();
      }
    });
  }

  it('a density that does not match its mask is refused, whichever kernels load', async () => {
    const bad = await tinyModel(tmp.dir, 5, 'bad');
    const { log: _log, ...m } = structuredClone(await readManifest(bad));
    m.tasks[3].density = 0.01;
    await writeFile(path.join(bad, 'manifest.json'), serializeManifest(m));
    const refusal = (e: unknown) => e instanceof ModelFileError && /task 'random-3': density 0.01 does not match its mask \(0\.\d+\)/.test(e.message);
    await assert.rejects(loadModel(bad), refusal);
    for (const kernels of KERNELS) await assert.rejects(openEngine(bad, { backend: 'wasm', kernels, deferTfjs: true }), refusal, kernels);
  });
});
