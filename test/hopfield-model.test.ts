import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Architecture } from '../src/core/architecture.ts';
import { HopfieldReservoir, agreement } from '../src/core/hopfield-reservoir.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { WRITE_STEPS } from '../src/model/durable-fs.ts';
import { ModelFileError } from '../src/model/errors.ts';
import { sealJson } from '../src/model/manifest.ts';
import {
  type HopfieldModel,
  type NewHopfieldTask,
  addHopfieldTasks,
  createHopfieldModel,
  cueOfTask,
  isHopfieldModel,
  loadHopfieldModel,
} from '../src/model/hopfield-model.ts';

const ARCH: Architecture = { inputSize: 20, hidden: [64, 32], outputs: 10, classes: 10 };
const roots: string[] = [];
after(async () => {
  for (const r of roots) await rm(r, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'hopfield-model-'));
  roots.push(root);
  return path.join(root, 'model');
}

function randomTask(id: string, seed: number): NewHopfieldTask {
  const rng = new Xoshiro128(seed);
  return { id, name: `Task ${id}`, masks: ARCH.hidden.map((d) => Uint8Array.from({ length: d }, () => rng.nextUint32() & 1)) };
}

async function threeTaskModel(rule: 'hebbian' | 'storkey' = 'storkey'): Promise<{ dir: string; model: HopfieldModel; tasks: NewHopfieldTask[] }> {
  const dir = await freshDir();
  const tasks = [randomTask('a', 1), randomTask('b', 2), randomTask('c', 3)];
  const model = await createHopfieldModel(dir, { architecture: ARCH, seed: 4, rule, cueBits: 16 }, tasks);
  return { dir, model, tasks };
}

describe('HopSupSup model files', () => {
  it('isHopfieldModel: from the first line a sealed manifest starts with, else (format not first) from the whole parse', async () => {
    const { dir } = await threeTaskModel();
    const file = path.join(dir, 'manifest.json');
    const plain = (await readFile(file, 'utf8')).replace('"supsup-hopfield-model"', '"supsup-model"');
    await writeFile(file, plain); // the first line says supsup-model: not read further, so its checksum does not matter
    assert.equal(await isHopfieldModel(dir), false);
    await writeFile(file, sealJson({ formatVersion: 1, format: 'supsup-hopfield-model' }));
    assert.equal(await isHopfieldModel(dir), true);
    await writeFile(file, sealJson({ formatVersion: 1, format: 'supsup-model' }));
    assert.equal(await isHopfieldModel(dir), false);
    assert.equal(await isHopfieldModel(path.join(dir, 'none')), false);
  });

  for (const rule of ['hebbian', 'storkey'] as const) {
    it(`${rule}: round-trips Ψ, the pattern sums and the cues; each task's cue recalls its masks`, async () => {
      const { dir, model, tasks } = await threeTaskModel(rule);
      assert.ok(await isHopfieldModel(dir));
      const loaded = await loadHopfieldModel(dir);
      assert.deepEqual(loaded.manifest, model.manifest);
      const expected = ARCH.hidden.map((d) => new HopfieldReservoir(d));
      for (const t of tasks) t.masks.forEach((m, l) => expected[l].storeMask(m, rule));
      loaded.reservoirs.forEach((r, l) => {
        assert.deepEqual(r.weights, expected[l].weights);
        assert.deepEqual(r.patternSum, expected[l].patternSum);
        assert.equal(r.count, 3);
      });
      loaded.manifest.tasks.forEach((t, k) => {
        loaded.reservoirs.forEach((r, l) => {
          const { pattern } = r.recallFromCue(cueOfTask(loaded.manifest, t, l));
          assert.equal(agreement(Uint8Array.from(pattern, (v) => (v > 0 ? 1 : 0)), tasks[k].masks[l]), ARCH.hidden[l], `${t.id} layer ${l}`);
        });
      });
      assert.deepEqual(await readdir(dir), ['manifest.json', 'reservoir.bin']);
    });
  }

  it('adding a task writes a new reservoir file, switches the manifest, removes the old file', async () => {
    const { dir, model } = await threeTaskModel();
    const next = await addHopfieldTasks(dir, model, [randomTask('d', 9)]);
    assert.equal(next.manifest.reservoir.patterns, 4);
    assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'reservoir.1.bin']);
    assert.deepEqual((await loadHopfieldModel(dir)).manifest, next.manifest);
    assert.equal(model.reservoirs[0].count, 3, 'the old in-memory model is untouched');
    await assert.rejects(addHopfieldTasks(dir, next, [randomTask('d', 10)]), /already exists/);
    await assert.rejects(addHopfieldTasks(dir, next, [{ id: 'e', name: 'E', masks: [new Uint8Array(64), new Uint8Array(31)] }]), /one 0\/1 mask per hidden layer/);
    await assert.rejects(addHopfieldTasks(dir, next, [{ id: 'bad id', name: 'E', masks: randomTask('x', 1).masks }]), /must match/);
    assert.deepEqual((await loadHopfieldModel(dir)).manifest, next.manifest, 'refused adds change nothing');
  });

  it('rejects every damaged byte of the reservoir file and of the manifest, truncation, extension, and a mismatched file', async () => {
    const { dir } = await threeTaskModel();
    const resFile = path.join(dir, 'reservoir.bin');
    const manFile = path.join(dir, 'manifest.json');
    const res = await readFile(resFile);
    const man = await readFile(manFile);
    const expectRejected = async (what: string) => {
      await assert.rejects(loadHopfieldModel(dir), (e: unknown) => e instanceof ModelFileError, what);
    };
    const positions = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i < 64 || i % 13 === 0 || i >= n - 8);
    for (const i of positions(res.length)) {
      const bad = Buffer.from(res);
      bad[i] ^= 0x10;
      await writeFile(resFile, bad);
      await expectRejected(`reservoir byte ${i}`);
    }
    await writeFile(resFile, res);
    for (const i of positions(man.length)) {
      const bad = Buffer.from(man);
      bad[i] ^= 0x01;
      await writeFile(manFile, bad);
      await expectRejected(`manifest byte ${i}`);
    }
    await writeFile(manFile, man);
    for (const n of [0, 39, 40, res.length - 1]) {
      await writeFile(resFile, res.subarray(0, n));
      await expectRejected(`reservoir truncated to ${n}`);
    }
    await writeFile(resFile, Buffer.concat([res, Buffer.alloc(1)]));
    await expectRejected('reservoir extended');
    await writeFile(manFile, man.subarray(0, man.length - 3));
    await expectRejected('manifest truncated');
    await writeFile(manFile, man);
    // A reservoir file from another model (another file id) next to this manifest.
    const other = await threeTaskModel();
    await writeFile(resFile, await readFile(path.join(other.dir, 'reservoir.bin')));
    await assert.rejects(loadHopfieldModel(dir), /file id differs/);
    await rm(resFile);
    await assert.rejects(loadHopfieldModel(dir), /cannot read the reservoir/);
    await writeFile(resFile, res);
    await loadHopfieldModel(dir);
  });

  it('a crash at any step of an add leaves the old model or the new one, and the next add works', async () => {
    for (const crashAt of WRITE_STEPS.reservoir) {
      const { dir, model } = await threeTaskModel();
      const crash = new Error(`crash at ${crashAt}`);
      await assert.rejects(
        addHopfieldTasks(dir, model, [randomTask('d', 9)], {
          faults: (step) => {
            if (step === crashAt) throw crash;
          },
        }),
        (e) => e === crash,
      );
      const after = await loadHopfieldModel(dir);
      const ids = after.manifest.tasks.map((t) => t.id).join(',');
      assert.ok(ids === 'a,b,c' || ids === 'a,b,c,d', `${crashAt}: ${ids}`);
      assert.equal(after.reservoirs[0].count, after.manifest.tasks.length);
      const again = await addHopfieldTasks(dir, after, [randomTask('e', 11)]);
      assert.deepEqual((await loadHopfieldModel(dir)).manifest, again.manifest, crashAt);
      assert.equal((await readdir(dir)).filter((f) => f.startsWith('reservoir')).length, 1, `${crashAt}: old files removed`);
    }
  });
});
