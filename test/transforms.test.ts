import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyTransform,
  familyTask,
  invertPermutation,
  permutedTask,
  relabel,
  rotatedTask,
  selectExamples,
  splitTask,
  taskDataset,
  validateTransform,
  type TaskTransform,
} from '../src/data/transforms.ts';
import type { Dataset } from '../src/data/datasets.ts';

const W = 28;
const H = 28;

function randomImages(count: number, seed = 1): Float32Array {
  const out = new Float32Array(count * W * H);
  let x = seed;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = (x >>> 8) / 16777216;
  }
  return out;
}

function perm(t: TaskTransform): number[] {
  assert.equal(t.kind, 'permutation');
  return (t as Extract<TaskTransform, { kind: 'permutation' }>).permutation;
}

test('permutedTask is a bijection of 0..783, deterministic by seed, different between seeds', () => {
  for (const i of [0, 1, 2, 249, 2499]) {
    const p = perm(permutedTask(i));
    assert.equal(p.length, 784);
    assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 784 }, (_, k) => k));
    assert.deepEqual(permutedTask(i), permutedTask(i));
    assert.equal((permutedTask(i) as { seed: number }).seed, i);
  }
  const p0 = perm(permutedTask(0));
  assert.notDeepEqual(p0, Array.from({ length: 784 }, (_, k) => k), 'task 0 is permuted too');
  const p1 = perm(permutedTask(1));
  assert.notDeepEqual(p0, p1);
  const fixed = p0.filter((v, k) => v === k).length;
  assert.ok(fixed < 10, `${fixed} fixed points`);
  // Golden values: Fisher–Yates with Xoshiro128(i) must not drift, or task i changes meaning.
  assert.deepEqual(p0.slice(0, 8), [233, 116, 707, 320, 336, 698, 582, 627]);
  assert.deepEqual(p1.slice(0, 8), [337, 322, 628, 627, 778, 332, 311, 115]);
});

test('applyTransform with a permutation, then the inverse permutation, gives the input back exactly', () => {
  const images = randomImages(3);
  const t = permutedTask(7);
  const p = perm(t);
  const out = applyTransform(t, images, W, H);
  assert.notDeepEqual(out, images);
  // output pixel i = input pixel p[i], per image
  for (const n of [0, 2]) for (const i of [0, 100, 783]) assert.equal(out[n * 784 + i], images[n * 784 + p[i]]);
  const inv = invertPermutation(p);
  const back = applyTransform({ kind: 'permutation', seed: 7, permutation: inv }, out, W, H);
  assert.deepEqual(back, images);
  assert.deepEqual(invertPermutation(inv), p);
});

test('rotation by 0 (and 360) is exact identity', () => {
  const images = randomImages(2);
  assert.deepEqual(applyTransform(rotatedTask(0), images, W, H), images);
  assert.deepEqual(applyTransform({ kind: 'rotation', degrees: 360 }, images, W, H), images);
  assert.deepEqual(applyTransform({ kind: 'identity' }, images, W, H), images);
});

test('rotation by 90 degrees turns a known pixel counter-clockwise about the centre', () => {
  const img = new Float32Array(W * H);
  img[10 * W + 20] = 1; // row 10, column 20: right of and above the centre (13.5, 13.5)
  const out = applyTransform({ kind: 'rotation', degrees: 90 }, img, W, H);
  // Counter-clockwise as displayed: (dx, dy) = (6.5, -3.5) goes to (-3.5, -6.5): column 10, row 7.
  assert.ok(Math.abs(out[7 * W + 10] - 1) < 1e-6, `got ${out[7 * W + 10]}`);
  let total = 0;
  for (const v of out) total += v;
  assert.ok(Math.abs(total - 1) < 1e-6);
  // A non-multiple of 90 spreads the pixel over its bilinear neighbours but keeps it near the same place.
  const out45 = applyTransform({ kind: 'rotation', degrees: 45 }, img, W, H);
  let best = 0;
  for (let i = 1; i < out45.length; i++) if (out45[i] > out45[best]) best = i;
  const [bx, by] = [best % W, Math.floor(best / W)];
  const a = Math.PI / 4;
  const ex = 13.5 + 6.5 * Math.cos(a) - 3.5 * Math.sin(a);
  const ey = 13.5 - 6.5 * Math.sin(a) - 3.5 * Math.cos(a);
  assert.ok(Math.abs(bx - ex) <= 1 && Math.abs(by - ey) <= 1, `45°: brightest at (${bx}, ${by}), expected near (${ex}, ${ey})`);
});

test('four rotations by 90 degrees give the input back on the interior; 10° steps keep the interior close', () => {
  const images = randomImages(2, 5);
  let x = images;
  for (let k = 0; k < 4; k++) x = applyTransform(rotatedTask(9), x, W, H);
  for (let n = 0; n < 2; n++) {
    for (let r = 2; r < H - 2; r++) {
      for (let c = 2; c < W - 2; c++) {
        const i = n * 784 + r * W + c;
        assert.ok(Math.abs(x[i] - images[i]) < 1e-6, `pixel ${i}`);
      }
    }
  }
  // +30° then -30° is close to the input near the centre (bilinear smoothing, so only approximately).
  const smooth = new Float32Array(W * H).map((_, i) => Math.sin((i % W) / 5) * Math.cos(Math.floor(i / W) / 5));
  const there = applyTransform({ kind: 'rotation', degrees: 30 }, smooth, W, H);
  const back = applyTransform({ kind: 'rotation', degrees: -30 }, there, W, H);
  for (let r = 8; r < 20; r++) for (let c = 8; c < 20; c++) assert.ok(Math.abs(back[r * W + c] - smooth[r * W + c]) < 0.05);
});

test('rotatedTask steps', () => {
  assert.deepEqual(rotatedTask(3), { kind: 'rotation', degrees: 30 });
  assert.deepEqual(rotatedTask(3, 15), { kind: 'rotation', degrees: 45 });
  assert.deepEqual(familyTask('rotated', 35), { kind: 'rotation', degrees: 350 });
});

test('split tasks select their two classes and relabel them 0 and 1', () => {
  assert.deepEqual(splitTask(0), { kind: 'split', classes: [0, 1] });
  assert.deepEqual(splitTask(4), { kind: 'split', classes: [8, 9] });
  assert.throws(() => splitTask(5), /only 10 classes/);
  const labels = Uint8Array.from([0, 3, 2, 9, 3, 1, 2]);
  const t = splitTask(1);
  assert.deepEqual([...selectExamples(t, labels)], [1, 2, 4, 6]);
  assert.equal(relabel(t, 2), 0);
  assert.equal(relabel(t, 3), 1);
  assert.throws(() => relabel(t, 4), /label 4 is not one of the split task's classes \[2, 3\]/);
  assert.deepEqual([...selectExamples(permutedTask(0), labels)], [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(relabel(rotatedTask(1), 7), 7);
  const images = randomImages(7);
  assert.deepEqual(applyTransform(t, images, W, H), images);

  const ds: Dataset = { name: 'd', images, labels, count: 7, width: W, height: H };
  const view = taskDataset(t, ds, 'split-1');
  assert.equal(view.count, 4);
  assert.deepEqual([...view.labels], [1, 0, 1, 0]);
  assert.deepEqual(view.images.subarray(784, 1568), images.subarray(2 * 784, 3 * 784));
  const pview = taskDataset(permutedTask(3), ds);
  assert.deepEqual(pview.images, applyTransform(permutedTask(3), images, W, H));
  assert.deepEqual(pview.labels, labels);
});

test('validateTransform accepts good transforms and rejects bad ones clearly', () => {
  for (const t of [{ kind: 'identity' }, permutedTask(3), rotatedTask(2), splitTask(2)] as TaskTransform[]) {
    const v = validateTransform(JSON.parse(JSON.stringify(t)), 784);
    assert.deepEqual(v, t);
  }
  const p = perm(permutedTask(3));
  const bad: [unknown, RegExp, number?][] = [
    [null, /expected an object/],
    [[1, 2], /expected an object/],
    [{ kind: 'blur' }, /unknown kind "blur"/],
    [{}, /unknown kind undefined/],
    [{ kind: 'identity', degrees: 3 }, /unexpected field "degrees"/],
    [{ kind: 'rotation', degrees: Infinity }, /degrees must be a finite number/],
    [{ kind: 'rotation', degrees: '90' }, /degrees must be a finite number, got "90"/],
    [{ kind: 'rotation' }, /degrees must be a finite number/],
    [{ kind: 'permutation', seed: -1, permutation: p }, /seed must be an integer/],
    [{ kind: 'permutation', seed: 1.5, permutation: p }, /seed must be an integer/],
    [{ kind: 'permutation', seed: 3 }, /permutation must be a non-empty array/],
    [{ kind: 'permutation', seed: 3, permutation: p.slice(1) }, /permutation has length 783, expected 784/, 784],
    [{ kind: 'permutation', seed: 3, permutation: [0, 1, 1] }, /1 appears twice/],
    [{ kind: 'permutation', seed: 3, permutation: [0, 3, 1] }, /permutation\[1\] = 3 is not an integer in 0..2/],
    [{ kind: 'permutation', seed: 3, permutation: [0, 0.5, 1] }, /permutation\[1\] = 0.5/],
    [{ kind: 'split', classes: [] }, /non-empty array/],
    [{ kind: 'split', classes: [1, 1] }, /duplicate/],
    [{ kind: 'split', classes: [1, -2] }, /split class -2 is not an integer label/],
    [{ kind: 'split', classes: [1, 300] }, /split class 300/],
  ];
  for (const [value, pattern, pixels] of bad) {
    assert.throws(() => validateTransform(value, pixels), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.match(e.message, /^invalid task transform: /);
      assert.match(e.message, pattern);
      return true;
    }, JSON.stringify(value));
  }
  // Without an expected size any true permutation is fine; the result is a copy.
  const small = { kind: 'permutation', seed: 0, permutation: [2, 0, 1] };
  const v = validateTransform(small) as { permutation: number[] };
  v.permutation[0] = 9;
  assert.deepEqual(small.permutation, [2, 0, 1]);
});

test('applyTransform checks sizes', () => {
  assert.throws(() => applyTransform(permutedTask(0, 9), randomImages(1), W, H), /permutation has length 9, images have 784 pixels/);
  assert.throws(() => applyTransform({ kind: 'identity' }, new Float32Array(10), W, H), /not a multiple of 28 × 28/);
});
