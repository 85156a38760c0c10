import { test, after, mock } from 'node:test';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type Architecture, maskWords, presetArchitecture, weightCount } from '../src/core/architecture.ts';
import { SupsupError } from '../src/contract/errors.ts';
import type { TaskSpec } from '../src/contract/task.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { crc32, crc32Table } from '../src/model/crc32.ts';
import { type FaultHook, type WriteOp, type WriteStep, WRITE_STEPS } from '../src/model/durable-fs.ts';
import { ModelFileError } from '../src/model/errors.ts';
import { type Manifest, serializeManifest } from '../src/model/manifest.ts';
import { encodeHeader, encodeRecord, fingerprintText } from '../src/model/mask-file.ts';
import {
  appendTask,
  appendTasks,
  checkpointModel,
  checkpointsSettled,
  compactModel,
  createModel,
  loadModel,
  readManifest,
  removeTask,
  setUnknownTaskThreshold,
} from '../src/model/model-store.ts';
import { randomMask, writeRandomModel } from '../src/model/random-model.ts';

// P = 10·7 + 7·5 = 105 weights: 4 words, the last with 23 padding bits.
const ARCH: Architecture = { inputSize: 10, hidden: [7], outputs: 5, classes: 2 };
const P = weightCount(ARCH);
const WORDS = maskWords(ARCH);
const NORM = { mean: 0.1307, std: 0.3081 };
const EXAMPLE = path.join(import.meta.dirname, '..', 'models', 'example-lenet');

const root = await mkdtemp(path.join(tmpdir(), 'supsup-model-store-'));
after(() => rm(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(root, `m${dirs++}`);

let maskSeed = 1000;
function mask(): Uint32Array {
  return randomMask(ARCH, 0.5, new Xoshiro128(maskSeed++));
}

function task(id: string, extra: Partial<TaskSpec> = {}): TaskSpec {
  return { id, name: `Task ${id}`, transform: { kind: 'identity' }, ...extra };
}

/** A model with the given task ids (each acknowledged), and the masks it must hold. */
async function modelWith(ids: string[], dir = freshDir()): Promise<{ dir: string; want: Map<string, Uint32Array> }> {
  await createModel(dir, { architecture: ARCH, seed: 7, normalization: NORM });
  const want = new Map<string, Uint32Array>();
  for (const id of ids) {
    const m = mask();
    await appendTask(dir, task(id), m);
    want.set(id, m);
  }
  return { dir, want };
}

async function assertHolds(dir: string, want: Map<string, Uint32Array>): Promise<void> {
  const { manifest, masks } = await loadModel(dir);
  assert.deepEqual(manifest.tasks.map((t) => t.id), [...want.keys()]);
  assert.deepEqual([...masks.keys()], [...want.keys()]);
  for (const [id, m] of want) assert.deepEqual(masks.get(id), m, `mask of ${id}`);
}

const masksPath = async (dir: string) => path.join(dir, (await readManifest(dir)).masks.file);

async function rejectsWith(p: Promise<unknown>, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ModelFileError, `expected a ModelFileError, got ${e}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

class Crash extends Error {}
function crashAt(op: WriteOp, step: WriteStep, nth = 1): FaultHook {
  let n = 0;
  return (s, o) => {
    if (o === op && s === step && ++n === nth) throw new Crash(`${o} ${s}`);
  };
}

/** A record built from docs/model-format.md alone, with any word count and payload. */
function docRecord(id: string, words: ArrayLike<number>, wordCount = words.length): Buffer {
  const L = id.length;
  const b = Buffer.alloc(18 + L + 4 * words.length);
  b.write('TASK', 0, 'ascii');
  b.writeUInt16LE(L, 4);
  b.write(id, 6, 'ascii');
  b.writeUInt32LE(wordCount, 6 + L);
  for (let j = 0; j < words.length; j++) b.writeUInt32LE(words[j] >>> 0, 18 + L + 4 * j);
  b.writeUInt32LE(crc32(b.subarray(18 + L)), 10 + L);
  b.writeUInt32LE(crc32(b.subarray(0, 14 + L)), 14 + L);
  return b;
}

/** manifest.json bytes for any JSON value, by the rule in docs/model-format.md (layout left to JSON.stringify). */
function docManifest(value: unknown): Buffer {
  const text = JSON.stringify(value, null, 4);
  const body = Buffer.from(text.slice(0, -2) + ',\n', 'utf8');
  const hex = crc32(body).toString(16).padStart(8, '0');
  return Buffer.concat([body, Buffer.from(`  "checksum": "${hex}"\n}\n`, 'ascii')]);
}

async function rewriteManifest(dir: string, edit: (m: Manifest) => unknown): Promise<void> {
  const { log: _log, ...m } = structuredClone(await readManifest(dir)); // a manifest without a task log: all in one file
  const out = (edit(m) ?? m) as Manifest;
  await writeFile(path.join(dir, 'manifest.json'), serializeManifest(out));
}

test('crc32 is CRC-32/ISO-HDLC (zlib), native and table agree', () => {
  const check = Buffer.from('123456789', 'ascii');
  assert.equal(crc32(check), 0xcbf43926);
  assert.equal(crc32Table(check), 0xcbf43926);
  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 131) & 255));
  assert.equal(crc32(data), crc32Table(data));
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test('round trip: create, append tasks of every transform kind, load: masks bit for bit, manifest fields equal', async () => {
  const dir = freshDir();
  const created = await createModel(dir, { architecture: ARCH, seed: 42, normalization: NORM });
  assert.deepEqual((await loadModel(dir)).manifest, created);
  const perm = [3, 1, 4, 0, 5, 9, 2, 6, 8, 7];
  const tasks: TaskSpec[] = [
    task('id.0', { description: 'plain', addedAt: '2024-01-02T03:04:05.678Z' }),
    task('perm_1', { transform: { kind: 'permutation', seed: 1, permutation: perm } }),
    task('rot-2', { transform: { kind: 'rotation', degrees: 20 } }),
    task('SPLIT3', { transform: { kind: 'split', classes: [6, 7] } }),
  ];
  const masks = tasks.map(() => mask());
  masks[0] = new Uint32Array(WORDS); // all zero
  masks[1] = new Uint32Array(WORDS).fill(0xffffffff);
  masks[1][WORDS - 1] = (1 << (P & 31)) - 1; // all ones, padding zero
  const entries = [await appendTask(dir, tasks[0], masks[0]), await appendTask(dir, tasks[1], masks[1])];
  entries.push(...(await appendTasks(dir, [2, 3].map((i) => ({ task: tasks[i], mask: masks[i] })))));

  const { manifest, masks: loaded } = await loadModel(dir);
  assert.deepEqual(manifest.tasks, entries);
  assert.equal(manifest.seed, 42);
  assert.equal(manifest.prngVersion, 1);
  assert.deepEqual(manifest.architecture, ARCH);
  assert.deepEqual(manifest.normalization, NORM);
  assert.deepEqual(manifest.removed, []);
  assert.equal(manifest.masks.file, 'masks.bin');
  tasks.forEach((t, i) => {
    const e = manifest.tasks[i];
    assert.equal(e.id, t.id);
    assert.equal(e.name, t.name);
    assert.equal(e.description, t.description);
    assert.deepEqual(e.transform, t.transform);
    assert.equal(e.record, i);
    assert.ok(!Number.isNaN(Date.parse(e.addedAt)));
    assert.deepEqual(loaded.get(t.id), masks[i]);
  });
  assert.equal(manifest.tasks[0].addedAt, '2024-01-02T03:04:05.678Z');
  assert.equal(manifest.tasks[0].density, 0);
  assert.equal(manifest.tasks[1].density, 1);
  const size = (await stat(path.join(dir, 'masks.bin'))).size;
  assert.equal(size, 36 + tasks.reduce((n, t) => n + 18 + t.id.length + 4 * WORDS, 0));
  assert.equal(manifest.masks.bytes, size);
});

test('the file layout is exactly the one docs/model-format.md describes', async () => {
  const { dir, want } = await modelWith(['a', 'bb']);
  const buf = await readFile(path.join(dir, 'masks.bin'));
  const manifest = await readManifest(dir);
  assert.equal(buf.subarray(0, 8).toString('ascii'), 'SUPSUPMK');
  assert.equal(buf.readUInt32LE(8), 1);
  assert.equal(buf.readUInt32LE(12), P);
  assert.equal(buf.readUInt32LE(16), WORDS);
  const text = 'supsup-base-v1;input=10;hidden=7;outputs=5;classes=2;seed=7;prng=1';
  assert.equal(fingerprintText(ARCH, 7, 1), text);
  assert.equal(buf.readUInt32LE(20), crc32(Buffer.from(text, 'ascii')));
  assert.equal(buf.subarray(24, 32).toString('hex'), manifest.masks.fileId);
  assert.equal(buf.readUInt32LE(32), crc32(buf.subarray(0, 32)));
  const a = docRecord('a', want.get('a')!);
  const bb = docRecord('bb', want.get('bb')!);
  assert.deepEqual(buf.subarray(36), Buffer.concat([a, bb]));
  assert.deepEqual(encodeRecord('a', want.get('a')!), a);
  // Weight w is bit (w & 31) of word (w >>> 5), words little-endian: weight 8 is bit 0 of byte 1 of the payload.
  const m = new Uint32Array(WORDS);
  m[0] = 1 << 8;
  assert.equal(docRecord('x', m)[18 + 1 + 1], 1);
  // manifest.json ends with the checksum line over all bytes before it.
  const mbytes = await readFile(path.join(dir, 'manifest.json'));
  const tail = /  "checksum": "([0-9a-f]{8})"\n\}\n$/.exec(mbytes.toString('utf8'));
  assert.ok(tail);
  const body = mbytes.subarray(0, mbytes.length - Buffer.byteLength(tail[0]));
  assert.equal(crc32(body), parseInt(tail[1], 16));
  assert.ok(body.toString('utf8').endsWith(',\n'));
});

test('the bundled example models/example-lenet loads: LeNet 300-100, s = 100, 8 random tasks of density ~0.5', async () => {
  const { manifest, masks } = await loadModel(EXAMPLE);
  assert.deepEqual(manifest.architecture, presetArchitecture('lenet-300-100', 100, 10));
  assert.equal(manifest.seed, 1);
  assert.deepEqual(manifest.normalization, { mean: 0.1307, std: 0.3081 });
  assert.equal(manifest.tasks.length, 8);
  assert.equal(masks.size, 8);
  for (const t of manifest.tasks) {
    assert.deepEqual(t.transform, { kind: 'identity' });
    assert.ok(Math.abs(t.density - 0.5) < 0.01, `${t.id} density ${t.density}`);
    assert.equal(masks.get(t.id)!.length, 8600);
  }
  assert.equal(manifest.masks.bytes, 36 + 8 * (18 + 'random-0'.length + 275200 / 8));
});

test('writeRandomModel is deterministic for a seed and honours the density', async () => {
  const opts = { architecture: ARCH, seed: 5, tasks: 3, density: 0.25 };
  const a = freshDir();
  const b = freshDir();
  await writeRandomModel(a, opts);
  await writeRandomModel(b, opts);
  const [ma, mb] = [await loadModel(a), await loadModel(b)];
  assert.deepEqual([...ma.masks.entries()], [...mb.masks.entries()]);
  assert.notDeepEqual(ma.masks.get('random-0'), ma.masks.get('random-1'));
  const big = randomMask(presetArchitecture('lenet-300-100', 100), 0.25, new Xoshiro128(9));
  let ones = 0;
  for (const w of big) for (let v = w; v; v &= v - 1) ones++;
  assert.ok(Math.abs(ones / 275200 - 0.25) < 0.005);
});

/** Flips each of `bits` in every byte of `file` in turn: each version must be rejected with `problem`. */
async function everyFlipRejected(dir: string, file: string, bits: number[], problem: RegExp): Promise<void> {
  const good = await readFile(file);
  for (let i = 0; i < good.length; i++) {
    for (const bit of bits) {
      const bad = Buffer.from(good);
      bad[i] ^= bit;
      await writeFile(file, bad);
      await rejectsWith(loadModel(dir), file, problem);
    }
  }
  await writeFile(file, good);
  await loadModel(dir);
}

test('a flipped bit anywhere in the committed masks file is rejected, naming the file', async () => {
  const { dir } = await modelWith(['a', 'b']);
  await everyFlipRejected(dir, path.join(dir, 'masks.bin'), [0x01, 0x80], /bad magic|bad record magic|checksum mismatch|id length/);
});

test('masks file damage: each kind of problem gets its own message', async () => {
  const { dir } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'masks.bin');
  const good = await readFile(file);
  const recB = 36 + 18 + 1 + 4 * WORDS;
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['magic', (b) => ((b[0] ^= 1), b), /bad magic/],
    ['header field', (b) => ((b[12] ^= 1), b), /header checksum mismatch/],
    ['header file id', (b) => ((b[30] ^= 1), b), /header checksum mismatch/],
    ['record magic', (b) => ((b[36] ^= 1), b), /record 0 at byte 36: bad record magic/],
    ['record id length', (b) => ((b[36 + 4] ^= 2), b), /record 0 at byte 36: .*(id length|record header checksum)/],
    ['record id', (b) => ((b[recB + 6] ^= 2), b), new RegExp(`record 1 at byte ${recB}: record header checksum mismatch`)],
    ['record word count', (b) => ((b[recB + 7] ^= 1), b), /record 1 .*record header checksum mismatch/],
    ['record payload crc', (b) => ((b[recB + 11] ^= 1), b), /record 1 .*record header checksum mismatch/],
    ['payload', (b) => ((b[b.length - 5] ^= 4), b), /record 1 .*task 'b': payload checksum mismatch/],
    ['empty file', () => Buffer.alloc(0), /truncated header: 0 bytes/],
    ['cut header', (b) => b.subarray(0, 20), /truncated header: 20 bytes/],
    ['cut record', (b) => b.subarray(0, b.length - 3), /truncated: manifest.json commits \d+ bytes but the file has only/],
  ];
  for (const [what, damage, problem] of cases) {
    await writeFile(file, damage(Buffer.from(good)));
    await rejectsWith(loadModel(dir), file, problem).catch((e) => assert.fail(`${what}: ${e.message}`));
  }
  // A newer format version (with a valid checksum) is "unsupported", not "damaged".
  const v2 = Buffer.from(good);
  v2.writeUInt32LE(2, 8);
  v2.writeUInt32LE(crc32(v2.subarray(0, 32)), 32);
  await writeFile(file, v2);
  await rejectsWith(loadModel(dir), file, /unsupported format version 2 \(this reader knows 1\)/);
  await rm(file);
  await rejectsWith(loadModel(dir), file, /missing: manifest.json names it/);
});

test('truncation at every point of either file is rejected', async () => {
  const { dir } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'masks.bin');
  const good = await readFile(file);
  for (let n = 0; n < good.length; n++) {
    await writeFile(file, good.subarray(0, n));
    await rejectsWith(loadModel(dir), file, /truncated/);
  }
  await writeFile(file, good);
  const mfile = path.join(dir, 'manifest.json');
  const mgood = await readFile(mfile);
  for (let n = 0; n < mgood.length; n++) {
    await writeFile(mfile, mgood.subarray(0, n));
    await rejectsWith(loadModel(dir), mfile, /truncated or damaged: it does not end with the checksum line/);
  }
  await rm(mfile);
  await rejectsWith(loadModel(dir), mfile, /missing: this directory holds no model/);
});

test('a flipped bit anywhere in manifest.json is rejected, naming the file', async () => {
  const { dir } = await modelWith(['a', 'b']);
  await checkpointModel(dir); // the tasks in the manifest itself
  const mfile = path.join(dir, 'manifest.json');
  await everyFlipRejected(dir, mfile, [0x01, 0x20], /checksum/);
  const good = await readFile(mfile);
  // A hand edit of the JSON is damage too.
  await writeFile(mfile, good.toString('utf8').replace('"Task a"', '"Task A"'));
  await rejectsWith(loadModel(dir), mfile, /checksum mismatch \(stored [0-9a-f]{8}, computed [0-9a-f]{8}\)/);
  await writeFile(mfile, JSON.stringify(await readManifest(EXAMPLE)));
  await rejectsWith(loadModel(dir), mfile, /does not end with the checksum line/);
});

test('masks file written for another architecture, seed or model is rejected', async () => {
  const { dir } = await modelWith(['a']);
  const file = path.join(dir, 'masks.bin');
  const other = async (init: { architecture: Architecture; seed: number }) => {
    const d = freshDir();
    await createModel(d, { ...init, normalization: NORM });
    await copyFile(path.join(d, 'masks.bin'), file);
  };
  const keep = await readFile(file);
  await other({ architecture: ARCH, seed: 8 });
  await rejectsWith(loadModel(dir), file, /written for another architecture, seed or PRNG version: header fingerprint [0-9a-f]{8}/);
  await other({ architecture: { ...ARCH, classes: 3 }, seed: 7 });
  await rejectsWith(loadModel(dir), file, /another architecture, seed or PRNG version.*classes=2;seed=7/);
  await other({ architecture: { ...ARCH, hidden: [8] }, seed: 7 });
  await rejectsWith(loadModel(dir), file, /written for another architecture: it holds masks of P = 120 weights, the manifest's architecture has P = 105/);
  await other({ architecture: ARCH, seed: 7 });
  await rejectsWith(loadModel(dir), file, /belongs to another model: file id [0-9a-f]{16}, the manifest expects [0-9a-f]{16}/);
  await writeFile(file, keep);
  await loadModel(dir);
});

test('manifest and masks file disagreeing about tasks is rejected', async () => {
  const { dir } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'masks.bin');
  const mfile = path.join(dir, 'manifest.json');
  const good = await readFile(mfile);
  const restore = () => writeFile(mfile, good);

  await rewriteManifest(dir, (m) => void m.tasks.push({ ...m.tasks[0], id: 'zz', record: 2 }));
  await rejectsWith(loadModel(dir), file, /task 'zz' listed in manifest.json is missing: it refers to record 2, the file commits 2/);
  await restore();
  await rewriteManifest(dir, (m) => void m.tasks.pop());
  await rejectsWith(loadModel(dir), file, /record 1 \(task 'b'\) is not listed in manifest.json/);
  await restore();
  await rewriteManifest(dir, (m) => void ([m.tasks[0].record, m.tasks[1].record] = [1, 0]));
  await rejectsWith(loadModel(dir), file, /task '(a' listed in manifest.json refers to record 1, which holds task 'b|b' listed in manifest.json refers to record 0, which holds task 'a)'/);
  await restore();
  await rewriteManifest(dir, (m) => void (m.tasks[1].id = 'a'));
  await rejectsWith(loadModel(dir), mfile, /duplicate task id 'a'/);
  await restore();
  await rewriteManifest(dir, (m) => void (m.tasks[1].record = 0));
  await rejectsWith(loadModel(dir), mfile, /record 0 is also used by task 'a'/);
  await restore();
  await rewriteManifest(dir, (m) => void (m.tasks[0].density = 0.01));
  await rejectsWith(loadModel(dir), mfile, /task 'a': density 0.01 does not match its mask/);
  await restore();
  await rewriteManifest(dir, (m) => void m.removed.push({ id: 'q', record: 2, removedAt: '2024-01-01T00:00:00Z' }));
  await rejectsWith(loadModel(dir), file, /removed task 'q' in manifest.json refers to record 2, the file commits 2/);
  await restore();
  await assertHolds(dir, new Map((await loadModel(dir)).masks));
});

test('records with a wrong word count or bits set in padding are rejected even with valid checksums', async () => {
  const { dir } = await modelWith([]);
  const file = path.join(dir, 'masks.bin');
  const header = (await readFile(file)).subarray(0, 36);
  const commit = async (rec: Buffer, density: number) => {
    await writeFile(file, Buffer.concat([header, rec]));
    await rewriteManifest(dir, (m) => {
      m.tasks = [{ id: 't', name: 't', addedAt: '2024-01-01T00:00:00Z', density, record: 0, transform: { kind: 'identity' } }];
      m.masks.bytes = 36 + rec.length;
    });
  };
  await commit(docRecord('t', [1, 2, 3]), 3 / P);
  await rejectsWith(loadModel(dir), file, /record 0 at byte 36: task 't': wrong word count 3, masks of P = 105 weights have 4 words/);
  await commit(docRecord('t', [0, 0, 0, 1 << 9]), 1 / P);
  await rejectsWith(loadModel(dir), file, /task 't': bits set in padding \(past weight 104/);
  await commit(docRecord('t', [0, 0, 0, 1 << 8]), 1 / P);
  await loadModel(dir); // weight 104 is the last real one
  await commit(docRecord('t/', [0, 0, 0, 0]), 0);
  await rejectsWith(loadModel(dir), file, /invalid task id "t\/"/);
});

test('bad transforms, architectures and other manifest fields are rejected', async () => {
  const { dir } = await modelWith(['a']);
  const mfile = path.join(dir, 'manifest.json');
  const cases: [(m: Manifest) => void, RegExp][] = [
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = { kind: 'permutation', seed: 1, permutation: [0, 1, 2] }), /task 'a': bad transform: .*length 3, expected 10/],
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = { kind: 'permutation', seed: 1, permutation: [0, 1, 2, 3, 4, 5, 6, 7, 8, 8] }), /bad transform: .*appears twice/],
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = { kind: 'rotation', degrees: 'ten' }), /bad transform: .*degrees/],
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = { kind: 'split', classes: [] }), /bad transform: .*split classes/],
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = { kind: 'blur' }), /bad transform: .*unknown kind "blur"/],
    [(m) => void ((m.tasks[0] as { transform: unknown }).transform = undefined), /bad transform/],
    [(m) => void (m.architecture.classes = 6), /bad architecture: architecture.classes/],
    [(m) => void (m.architecture.hidden = [0]), /bad architecture: architecture.hidden/],
    [(m) => void ((m.architecture as { inputSize: unknown }).inputSize = '10'), /bad architecture: architecture.inputSize/],
    [(m) => void ((m as { formatVersion: number }).formatVersion = 2), /unsupported formatVersion 2/],
    [(m) => void (m.prngVersion = 2), /unsupported prngVersion 2/],
    [(m) => void (m.seed = -1), /seed must be an integer/],
    [(m) => void (m.normalization.std = 0), /normalization needs/],
    [(m) => void (m.masks.file = '../etc/passwd'), /masks.file "..\/etc\/passwd" is not a masks file name/],
    [(m) => void (m.tasks[0].id = 'a b'), /task id "a b" does not match/],
    [(m) => void (m.tasks[0].id = '..'), /task id "\.\." does not match/],
    [(m) => void (m.tasks[0].addedAt = 'yesterday'), /addedAt must be an ISO 8601 UTC time/],
    [(m) => void (m.unknownTask = { epsilon: -0.1, calibration: 'x' }), /unknownTask.epsilon must be a finite number >= 0, got -0.1/],
    [(m) => void ((m as { unknownTask: unknown }).unknownTask = { epsilon: '0.25', calibration: 'x' }), /unknownTask.epsilon must be a finite number/],
    [(m) => void (m.unknownTask = { epsilon: 0.25, calibration: '' }), /unknownTask.calibration must be a string of 1..4096 characters/],
    [(m) => void ((m as { unknownTask: unknown }).unknownTask = { epsilon: 0.25 }), /unknownTask.calibration must be a string/],
    [(m) => void ((m as { unknownTask: unknown }).unknownTask = { epsilon: 0.25, calibration: 'x', when: 'now' }), /unknownTask has an unknown field "when"/],
    [(m) => void ((m as { unknownTask: unknown }).unknownTask = 0.25), /unknownTask must be a JSON object/],
  ];
  const good = await readFile(mfile);
  for (const [i, [edit, problem]] of cases.entries()) {
    await rewriteManifest(dir, edit);
    await rejectsWith(loadModel(dir), mfile, problem).catch((e) => assert.fail(`case ${i}: ${e.message}`));
    await writeFile(mfile, good);
  }
  // Any JSON layout is fine as long as the checksum line is right; unknown fields are not.
  const plain = JSON.parse(good.toString('utf8'));
  delete plain.checksum;
  await writeFile(mfile, docManifest(plain));
  await loadModel(dir);
  await writeFile(mfile, docManifest({ ...plain, extra: 1 }));
  await rejectsWith(loadModel(dir), mfile, /the manifest has an unknown field "extra"/);
  await writeFile(mfile, docManifest({ ...plain, masks: { ...plain.masks, bytes: 35 } }));
  await rejectsWith(loadModel(dir), mfile, /masks.bytes must be an integer >= 36/);
  await writeFile(mfile, good);
});

test('a torn or unacknowledged append (bytes past the committed length) is ignored, then overwritten', async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'masks.bin');
  const good = await readFile(file);
  const rec = encodeRecord('c', mask());
  for (let cut = 1; cut <= rec.length; cut++) {
    await writeFile(file, Buffer.concat([good, rec.subarray(0, cut)]));
    await assertHolds(dir, want);
  }
  // Garbage past the committed end, even a damaged copy of a record, does not matter either.
  const junk = Buffer.from(rec);
  junk[5] ^= 0xff;
  await writeFile(file, Buffer.concat([good, junk, junk]));
  await assertHolds(dir, want);
  const m = mask();
  await appendTask(dir, task('c'), m);
  want.set('c', m);
  await assertHolds(dir, want);
  assert.equal((await stat(file)).size, (await readManifest(dir)).masks.bytes, 'the stale tail was cut off');
});

test('a crash before each append step leaves the previous model (or the new one, once renamed) and loses nothing acknowledged', async () => {
  for (const step of WRITE_STEPS.append) {
    const { dir, want } = await modelWith(['a', 'b']);
    const m = mask();
    await assert.rejects(appendTask(dir, task('c'), m, { faults: crashAt('append', step) }), Crash);
    const committed = step === 'log:fsync'; // the whole log record is written (a crash may or may not keep it: never acknowledged)
    await assertHolds(dir, committed ? new Map([...want, ['c', m]]) : want);
    // Recovery: the next writer carries on, and the crashed task can be retried unless it made it.
    const d = mask();
    if (!committed) await appendTask(dir, task('c'), m);
    await appendTask(dir, task('d'), d);
    await assertHolds(dir, new Map([...want, ['c', m], ['d', d]]));
  }
  // A batch append is all or nothing: crash while writing the second record.
  const { dir, want } = await modelWith(['a']);
  const items = ['x', 'y', 'z'].map((id) => ({ task: task(id), mask: mask() }));
  await assert.rejects(appendTasks(dir, items, { faults: crashAt('append', 'append:write-record-payload', 2) }), Crash);
  await assertHolds(dir, want);
  await appendTasks(dir, items);
  await assertHolds(dir, new Map([...want, ...items.map((i): [string, Uint32Array] => [i.task.id, i.mask])]));
});

test('a temp manifest left behind (crash while writing it) is ignored and replaced', async () => {
  const { dir, want } = await modelWith(['a']);
  const tmp = path.join(dir, 'manifest.json.tmp');
  await writeFile(tmp, (await readFile(path.join(dir, 'manifest.json'))).subarray(0, 50));
  await assertHolds(dir, want);
  const m = mask();
  await appendTask(dir, task('b'), m);
  await assertHolds(dir, new Map([...want, ['b', m]]));
  await checkpointModel(dir); // the next manifest rewrite replaces it
  assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'masks.bin', 'tasks.1.log']);
});

test('a crash before each create step leaves no model or the empty one; create can be retried', async () => {
  for (const step of WRITE_STEPS.create) {
    const dir = freshDir();
    const init = { architecture: ARCH, seed: 1, normalization: NORM };
    await assert.rejects(createModel(dir, init, { faults: crashAt('create', step) }), Crash);
    if (step === 'manifest:fsync-dir') {
      await assertHolds(dir, new Map());
      await assert.rejects(createModel(dir, init), /already holds a model/);
    } else {
      await rejectsWith(loadModel(dir), path.join(dir, 'manifest.json'), /missing/);
      await createModel(dir, init);
    }
    const m = mask();
    await appendTask(dir, task('a'), m);
    await assertHolds(dir, new Map([['a', m]]));
  }
});

test("the model's own unknown-task threshold: set, kept by later writes, cleared; a crash at any step leaves old or new", async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  assert.equal((await readManifest(dir)).unknownTask, undefined);
  const t = { epsilon: 0.25, calibration: 'chosen on batches A, confirmed on batches B' };
  await setUnknownTaskThreshold(dir, t);
  assert.deepEqual((await loadModel(dir)).manifest.unknownTask, t);
  const maskC = mask();
  await appendTask(dir, task('c'), maskC);
  want.set('c', maskC);
  await removeTask(dir, 'a', { compactAbove: 0 }); // compaction rewrites the manifest too
  want.delete('a');
  assert.deepEqual((await readManifest(dir)).unknownTask, t, 'appends, removals and compaction keep it');
  await assertHolds(dir, want);
  const t2 = { epsilon: 0.5, calibration: 'second opinion' };
  for (const step of WRITE_STEPS.threshold) {
    await assert.rejects(setUnknownTaskThreshold(dir, t2, { faults: crashAt('threshold', step) }), Crash);
    const now = (await readManifest(dir)).unknownTask;
    assert.deepEqual(now, step === 'log:fsync' ? t2 : t, step);
    await assertHolds(dir, want);
    await setUnknownTaskThreshold(dir, t);
  }
  await setUnknownTaskThreshold(dir, undefined);
  assert.equal((await readManifest(dir)).unknownTask, undefined);
  await checkpointModel(dir); // the log folded into the manifest
  assert.ok(!(await readFile(path.join(dir, 'manifest.json'), 'utf8')).includes('unknownTask'));
  await assertHolds(dir, want);
});

test('removal, re-adding a removed id, and compaction when dead records pass half', async () => {
  const { dir, want } = await modelWith(['a', 'b', 'c', 'd']);
  const r = await removeTask(dir, 'b');
  assert.equal(r.compacted, false);
  assert.equal(r.removed.record, 1);
  want.delete('b');
  await assertHolds(dir, want);
  let manifest = await readManifest(dir);
  assert.deepEqual(manifest.removed.map((x) => [x.id, x.record]), [['b', 1]]);
  assert.equal(manifest.masks.file, 'masks.bin');

  const b2 = mask(); // the same id again: a new record, the old one stays dead
  await appendTask(dir, task('b'), b2);
  want.set('b', b2);
  await assertHolds(dir, want);
  assert.equal((await readManifest(dir)).tasks.find((t) => t.id === 'b')!.record, 4);

  assert.equal((await removeTask(dir, 'a')).compacted, false); // 2 dead of 5
  want.delete('a');
  assert.equal((await removeTask(dir, 'c')).compacted, true); // 3 dead of 5 > 0.5
  want.delete('c');
  await assertHolds(dir, want);
  manifest = await readManifest(dir);
  assert.equal(manifest.masks.file, 'masks.1.bin');
  assert.deepEqual(manifest.removed, []);
  assert.deepEqual(manifest.tasks.map((t) => [t.id, t.record]), [['d', 0], ['b', 1]]);
  assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'masks.1.bin', 'tasks.1.log']);
  assert.equal((await stat(path.join(dir, 'masks.1.bin'))).size, 36 + 2 * (19 + 4 * WORDS));

  await assert.rejects(removeTask(dir, 'zz'), (e: SupsupError) => e instanceof SupsupError && e.code === 'not_found');
  await removeTask(dir, 'd', { compactAbove: 1 });
  await removeTask(dir, 'b', { compactAbove: 1 });
  await assertHolds(dir, new Map());
  await compactModel(dir);
  assert.equal((await readManifest(dir)).masks.file, 'masks.2.bin');
  assert.equal((await stat(path.join(dir, 'masks.2.bin'))).size, 36);
  await assertHolds(dir, new Map());
});

test('compaction streams a masks file of several write batches: every kept mask intact, the file exactly its records', async () => {
  // LeNet 300-100: 33 KB a mask, so 70 tasks (2.3 MB) take several of the ~1 MiB writes a compaction makes.
  const big = presetArchitecture('lenet-300-100', 10);
  const dir = freshDir();
  await createModel(dir, { architecture: big, seed: 7, normalization: NORM });
  const rng = new Xoshiro128(77);
  const items = Array.from({ length: 70 }, (_, i) => ({ task: task(`t${i}`), mask: randomMask(big, 0.5, rng) }));
  await appendTasks(dir, items);
  for (let i = 0; i < 70; i += 2) await removeTask(dir, `t${i}`, { compactAbove: 1 });
  await compactModel(dir);
  const kept = items.filter((_, i) => i % 2 === 1);
  const { manifest, masks } = await loadModel(dir);
  assert.deepEqual(manifest.tasks.map((t) => [t.id, t.record]), kept.map((t, r) => [t.task.id, r]));
  for (const { task: t, mask: m } of kept) assert.deepEqual(masks.get(t.id), m, `mask of ${t.id}`);
  const bytes = 36 + kept.reduce((n, t) => n + encodeRecord(t.task.id, t.mask).length, 0);
  assert.equal((await stat(await masksPath(dir))).size, bytes);
});

test('a crash before each remove step keeps the task or removes it, never anything else', async () => {
  for (const step of WRITE_STEPS.remove) {
    const { dir, want } = await modelWith(['a', 'b', 'c']);
    await assert.rejects(removeTask(dir, 'b', { faults: crashAt('remove', step) }), Crash);
    const done = step === 'log:fsync';
    if (done) want.delete('b');
    await assertHolds(dir, want);
    if (!done) await removeTask(dir, 'b');
    want.delete('b');
    await assertHolds(dir, want);
  }
  // Removal is durable even when the compaction it triggers crashes.
  const { dir, want } = await modelWith(['a']);
  await assert.rejects(
    removeTask(dir, 'a', { faults: crashAt('compact', 'compact:fsync-masks') }),
    /task 'a' was removed, but compacting .* then failed/,
  );
  want.delete('a');
  await assertHolds(dir, want);
});

test('a crash before each compaction step leaves a loadable model with every task; leftovers are cleaned later', async () => {
  for (const step of WRITE_STEPS.compact) {
    const { dir, want } = await modelWith(['a', 'b', 'c', 'd']);
    await removeTask(dir, 'b', { compactAbove: 1 });
    await removeTask(dir, 'c', { compactAbove: 1 });
    want.delete('b');
    want.delete('c');
    await assert.rejects(compactModel(dir, { faults: crashAt('compact', step) }), Crash);
    await assertHolds(dir, want);
    const switched = step === 'manifest:fsync-dir' || step === 'compact:remove-old';
    assert.equal((await readManifest(dir)).masks.file, switched ? 'masks.1.bin' : 'masks.bin');
    const e = mask(); // the model stays writable
    await appendTask(dir, task('e'), e);
    want.set('e', e);
    await compactModel(dir);
    await assertHolds(dir, want);
    const { masks, log } = await readManifest(dir);
    assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', masks.file, log!.file]);
  }
});

test('a partial compaction output left behind is ignored and overwritten', async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  await writeFile(path.join(dir, 'masks.1.bin'), (await readFile(path.join(dir, 'masks.bin'))).subarray(0, 40));
  await assertHolds(dir, want);
  await compactModel(dir);
  assert.equal((await readManifest(dir)).masks.file, 'masks.1.bin');
  await assertHolds(dir, want);
});

test('concurrent writers in one process are serialised; readers never see a broken model', async () => {
  const { dir, want } = await modelWith(['keep']);
  const added = Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, m: mask() }));
  const reads: Promise<unknown>[] = [];
  await Promise.all(
    added.map(async ({ id, m }, i) => {
      await appendTask(dir, task(id), m);
      if (i % 3 !== 0) await removeTask(dir, id);
      reads.push(loadModel(dir));
    }),
  );
  await Promise.all(reads);
  for (const { id, m } of added.filter((_, i) => i % 3 === 0)) want.set(id, m);
  const { manifest, masks } = await loadModel(dir);
  assert.deepEqual([...masks.keys()].sort(), [...want.keys()].sort());
  for (const [id, m] of want) assert.deepEqual(masks.get(id), m);
  assert.ok(manifest.masks.file !== 'masks.bin', 'removals triggered a compaction');
  // Loads racing a compaction (which deletes the old masks file) still succeed.
  await Promise.all([compactModel(dir), ...Array.from({ length: 20 }, () => loadModel(dir)), compactModel(dir)]);
});

test('bad input to the writers is refused before anything is written', async () => {
  const { dir, want } = await modelWith(['a']);
  const before = await readFile(await masksPath(dir));
  const pad = new Uint32Array(WORDS);
  pad[WORDS - 1] = 1 << 31;
  await assert.rejects(appendTask(dir, task('a'), mask()), /task "a" already exists/);
  await assert.rejects(appendTask(dir, task('b'), new Uint32Array(WORDS + 1)), /Uint32Array of 4 words/);
  await assert.rejects(appendTask(dir, task('b'), pad), /bits set in padding/);
  await assert.rejects(appendTask(dir, task('b/c'), mask()), /does not match/);
  await assert.rejects(appendTask(dir, task('b', { name: '' }), mask()), /name must be/);
  await assert.rejects(appendTask(dir, task('b', { transform: { kind: 'rotation', degrees: NaN } }), mask()), /bad transform/);
  await assert.rejects(appendTasks(dir, [{ task: task('b'), mask: mask() }, { task: task('b'), mask: mask() }]), /duplicate task id 'b'/);
  assert.deepEqual(await readFile(await masksPath(dir)), before);
  await assertHolds(dir, want);
  await assert.rejects(createModel(dir, { architecture: ARCH, seed: 1, normalization: NORM }), /already holds a model/);
  const other = freshDir();
  await createModel(other, { architecture: ARCH, seed: 1, normalization: NORM });
  await writeFile(path.join(other, 'notes.txt'), 'hi');
  await rm(path.join(other, 'manifest.json'));
  await assert.rejects(createModel(other, { architecture: ARCH, seed: 1, normalization: NORM }), /is not empty \(notes.txt\)/);
  await assert.rejects(createModel(freshDir(), { architecture: { ...ARCH, classes: 9 }, seed: 1, normalization: NORM }), (e: SupsupError) => e instanceof SupsupError && e.code === 'invalid_argument');
  await assert.rejects(createModel(freshDir(), { architecture: ARCH, seed: 1, normalization: NORM, prngVersion: 2 }), /unsupported prngVersion/);
});

test('encodeHeader/encodeRecord agree with a model written by the store', async () => {
  const { dir, want } = await modelWith(['a']);
  const manifest = await readManifest(dir);
  const buf = await readFile(path.join(dir, 'masks.bin'));
  assert.deepEqual(encodeHeader({ ...manifest, fileId: manifest.masks.fileId }), buf.subarray(0, 36));
  assert.deepEqual(encodeRecord('a', want.get('a')!), buf.subarray(36));
});

test('a load that read the manifest just before a compaction deleted its masks file retries with the new manifest', async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  await removeTask(dir, 'b', { compactAbove: 1 });
  want.delete('b');
  const old = path.join(dir, 'masks.bin');
  let raced = false;
  // The builtin's mutable exports object; syncBuiltinESMExports() makes the store's `import { open }` see the spy.
  const fsp = createRequire(import.meta.url)('node:fs/promises') as typeof import('node:fs/promises');
  const realOpen = fsp.open;
  const spy = mock.method(fsp, 'open', async (...args: Parameters<typeof fsp.open>) => {
    if (!raced && args[0] === old && args[1] === 'r') {
      raced = true; // the loader holds the old manifest; now a compaction switches files and deletes this one
      await compactModel(dir);
    }
    return realOpen(...args);
  });
  syncBuiltinESMExports();
  try {
    await assertHolds(dir, want);
  } finally {
    spy.mock.restore();
    syncBuiltinESMExports();
  }
  assert.ok(raced);
  assert.equal((await readManifest(dir)).masks.file, 'masks.1.bin');
});

// ----- the task log (docs/model-format.md §4a) -----

test('adding and removing tasks appends to the task log and leaves manifest.json untouched', async () => {
  const { dir, want } = await modelWith(['a']);
  const mfile = path.join(dir, 'manifest.json');
  const before = await stat(mfile, { bigint: true });
  const b = mask();
  await appendTask(dir, task('b', { transform: { kind: 'permutation', seed: 3, permutation: [9, 8, 7, 6, 5, 4, 3, 2, 1, 0] } }), b);
  await removeTask(dir, 'a');
  await setUnknownTaskThreshold(dir, { epsilon: 0.3, calibration: 'test' });
  const after = await stat(mfile, { bigint: true });
  assert.equal(after.ino, before.ino, 'manifest.json was not replaced');
  assert.equal(after.mtimeNs, before.mtimeNs, 'manifest.json was not written');
  want.delete('a');
  want.set('b', b);
  await assertHolds(dir, want);
  const { manifest } = await loadModel(dir);
  assert.deepEqual(manifest.removed.map((r) => r.id), ['a']);
  assert.equal(manifest.unknownTask?.epsilon, 0.3);
  // Folding the log into the manifest changes nothing a reader sees.
  const folded = await checkpointModel(dir);
  assert.deepEqual({ ...folded, log: undefined }, { ...manifest, log: undefined });
  assert.equal(folded.log!.file, 'tasks.1.log');
  assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'masks.bin', 'tasks.1.log']);
  await assertHolds(dir, want);
});

test('a torn task log record (cut anywhere, or with unwritten zero blocks) is dropped; the next write cuts it off', async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'tasks.log');
  const good = await readFile(file);
  const c = mask();
  await appendTask(dir, task('c'), c);
  const withC = await readFile(file);
  for (let n = good.length; n < withC.length; n++) {
    await writeFile(file, withC.subarray(0, n));
    await assertHolds(dir, want);
  }
  const zeroed = Buffer.from(withC);
  zeroed.fill(0, good.length + 40, Math.min(withC.length, good.length + 80)); // a block the crash never wrote
  await writeFile(file, zeroed);
  await assertHolds(dir, want);
  await appendTask(dir, task('c'), c); // acknowledged again, after the torn one
  want.set('c', c);
  await assertHolds(dir, want);
  assert.equal((await readFile(file)).length, withC.length, 'the torn tail was cut off, the record written where it belongs');
});

test('a flipped bit in the task log: damage before the last record is rejected; the last record is rejected or dropped, never misread', async () => {
  const { dir, want } = await modelWith(['a', 'b']);
  const file = path.join(dir, 'tasks.log');
  const good = await readFile(file); // a and b
  await appendTask(dir, task('c'), mask());
  const withC = await readFile(file);
  for (let i = 0; i < withC.length; i++) {
    const bad = Buffer.from(withC);
    bad[i] ^= 0x10;
    await writeFile(file, bad);
    if (i < good.length) {
      await rejectsWith(loadModel(dir), file, /checksum|damaged|bad magic|version|file id/).catch((e) => assert.fail(`byte ${i}: ${e.message}`));
    } else {
      // The last record: a flip that makes it look torn drops it (the one case a checksum cannot tell apart); else rejected.
      const r = await loadModel(dir).then((m) => [...m.masks.keys()], (e: Error) => e);
      if (Array.isArray(r)) assert.deepEqual(r, [...want.keys()], `byte ${i}`);
      else assert.ok(r instanceof ModelFileError && /damaged/.test(r.message), `byte ${i}: ${r}`);
    }
  }
  await writeFile(file, withC);
  await loadModel(dir);
});

test('a crash before each step of a checkpoint leaves every acknowledged change; leftovers are cleaned later', async () => {
  for (const step of WRITE_STEPS.checkpoint) {
    const { dir, want } = await modelWith(['a', 'b', 'c']);
    await removeTask(dir, 'b', { compactAbove: 1 });
    want.delete('b');
    await setUnknownTaskThreshold(dir, { epsilon: 0.4, calibration: 'kept' });
    await assert.rejects(checkpointModel(dir, { faults: crashAt('checkpoint', step) }), Crash);
    await assertHolds(dir, want);
    assert.equal((await readManifest(dir)).unknownTask?.epsilon, 0.4, step);
    const switched = step === 'manifest:fsync-dir' || step === 'checkpoint:remove-old';
    assert.equal((await readManifest(dir)).log!.file, switched ? 'tasks.1.log' : 'tasks.log', step);
    const d = mask(); // the model stays writable
    await appendTask(dir, task('d'), d);
    want.set('d', d);
    await removeTask(dir, 'a', { compactAbove: 1 });
    want.delete('a');
    await checkpointModel(dir);
    await assertHolds(dir, want);
    const { masks, log } = await readManifest(dir);
    assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', masks.file, log!.file], step);
  }
});

test('writers checkpoint in the background once the log outgrows the manifest; readers see the same model throughout', async () => {
  const { dir, want } = await modelWith(['a']);
  for (const id of ['b', 'c', 'd']) {
    const m = mask();
    await appendTask(dir, task(id), m, { checkpointAbove: 0 });
    want.set(id, m);
    await assertHolds(dir, want);
  }
  await checkpointsSettled(dir);
  const { log } = await readManifest(dir);
  assert.notEqual(log!.file, 'tasks.log', 'a checkpoint ran');
  assert.match(await readFile(path.join(dir, 'manifest.json'), 'utf8'), /"id": "b"/, 'the manifest itself now lists the logged tasks');
  assert.deepEqual((await readdir(dir)).sort(), ['manifest.json', 'masks.bin', log!.file], 'the old log was deleted');
  await assertHolds(dir, want);
});

test('a model written before the task log (manifest only) loads, and its first change creates the log; a crash then loses nothing', async () => {
  const legacy = async () => {
    const { dir, want } = await modelWith(['a', 'b']);
    await rewriteManifest(dir, () => undefined); // the same model as one manifest without a log
    await rm(path.join(dir, 'tasks.log'));
    assert.equal((await readManifest(dir)).log, undefined);
    await assertHolds(dir, want);
    return { dir, want };
  };
  for (const step of WRITE_STEPS.checkpoint) {
    const { dir, want } = await legacy();
    const c = mask();
    await assert.rejects(appendTask(dir, task('c'), c, { faults: crashAt('checkpoint', step) }), Crash);
    await assertHolds(dir, want);
    await appendTask(dir, task('c'), c);
    want.set('c', c);
    await assertHolds(dir, want);
    assert.equal((await readManifest(dir)).log!.file, 'tasks.log');
  }
  const { dir } = await legacy();
  await removeTask(dir, 'a', { compactAbove: 1 });
  assert.deepEqual((await loadModel(dir)).manifest.tasks.map((t) => t.id), ['b']);
});

test('a task log that does not fit its manifest is rejected, naming the file', async () => {
  const { dir } = await modelWith(['a']);
  const file = path.join(dir, 'tasks.log');
  const good = await readFile(file);
  const other = freshDir();
  await createModel(other, { architecture: ARCH, seed: 7, normalization: NORM });
  await copyFile(path.join(other, 'tasks.log'), file);
  await rejectsWith(loadModel(dir), file, /file id [0-9a-f]{16} does not match the manifest's log.fileId/);
  await rm(file);
  await rejectsWith(loadModel(dir), file, /missing: manifest.json names it/);
  await writeFile(file, good);
  await loadModel(dir);
});

test('a checkpoint writes the manifest a task at a time: the same bytes serializeManifest makes, across write batches', async () => {
  const dir = freshDir();
  await createModel(dir, { architecture: ARCH, seed: 7, normalization: NORM });
  // 700 tasks with 4000-character descriptions: ~2.8 MB of manifest, several 1 MiB write batches.
  const perm = (t: number) => Array.from({ length: 10 }, (_, i) => (i * 3 + t) % 10);
  await appendTasks(
    dir,
    Array.from({ length: 700 }, (_, t) => ({
      task: task(`t${t}`, { description: `task ${t} `.padEnd(4000, 'é'), transform: { kind: 'permutation', seed: t, permutation: perm(t) } }),
      mask: mask(),
    })),
  );
  const manifest = await checkpointModel(dir);
  const bytes = await readFile(path.join(dir, 'manifest.json'));
  assert.ok(bytes.length > 2 << 20, `${bytes.length} bytes`);
  assert.ok(bytes.equals(serializeManifest(manifest)));
  const { manifest: read } = await loadModel(dir);
  assert.deepEqual(read, manifest);
});
