// Task families as data transforms (paper benchmarks: PermutedMNIST, RotatedMNIST, SplitMNIST).
//
// A TaskTransform is plain JSON stored in the model manifest, so any client can reproduce a task's
// inputs without our PRNG:
// - identity: the images unchanged.
// - permutation: output pixel i = input pixel permutation[i] (flat row-major index). `seed` records
//   how it was made (permutedTask below); the explicit `permutation` is what counts.
// - rotation: the image turned by `degrees` about its centre ((width−1)/2, (height−1)/2),
//   counter-clockwise as displayed (row 0 at the top), as torchvision / PIL rotate; each output pixel
//   samples the input bilinearly at the inversely rotated position, 0 outside the image.
//   Multiples of 90° use exact cos/sin, so on a square image they move pixels without blending.
// - split: pixels unchanged; the task keeps only the examples whose label is in `classes`
//   (selectExamples) and relabels class classes[j] as j (relabel).
import { invalid } from '../contract/errors.ts';
import type { TaskTransform } from '../contract/task.ts';
import { Xoshiro128, shuffle } from '../core/prng.ts';
import type { Dataset } from './datasets.ts';

export type { TaskTransform };

export type TaskFamily = 'permuted' | 'rotated' | 'split';
export const TASK_FAMILIES: readonly TaskFamily[] = ['permuted', 'rotated', 'split'];

export const MNIST_PIXELS = 784;

function checkTaskIndex(i: number): void {
  if (!Number.isInteger(i) || i < 0 || i > 0xffffffff) throw invalid(`task index must be an integer in [0, 2^32), got ${i}`);
}

/**
 * PermutedMNIST task i: Fisher–Yates on [0, 1, …, size−1] with `new Xoshiro128(i)`: for j from
 * size−1 down to 1, swap entries j and rng.nextInt(j + 1). Task 0 is permuted too, as in the paper.
 */
export function permutedTask(i: number, size: number = MNIST_PIXELS): TaskTransform {
  checkTaskIndex(i);
  if (!Number.isInteger(size) || size <= 0) throw invalid(`size must be a positive integer, got ${size}`);
  const rng = new Xoshiro128(i);
  const permutation = Array.from({ length: size }, (_, k) => k);
  shuffle(permutation, rng);
  return { kind: 'permutation', seed: i, permutation };
}

/** RotatedMNIST task i: rotation by i · stepDegrees (the paper: 10°, 36 tasks). */
export function rotatedTask(i: number, stepDegrees = 10): TaskTransform {
  checkTaskIndex(i);
  if (!Number.isFinite(stepDegrees)) throw invalid(`stepDegrees must be finite, got ${stepDegrees}`);
  return { kind: 'rotation', degrees: i * stepDegrees };
}

/** SplitMNIST task i: the digit pair {2i, 2i+1} (5 tasks for 10 classes). */
export function splitTask(i: number, numClasses = 10): TaskTransform {
  checkTaskIndex(i);
  if (2 * i + 1 >= numClasses) {
    throw invalid(`split task ${i} needs classes ${2 * i} and ${2 * i + 1}, but there are only ${numClasses} classes`);
  }
  return { kind: 'split', classes: [2 * i, 2 * i + 1] };
}

/** Task i of a family. */
export function familyTask(family: TaskFamily, i: number): TaskTransform {
  switch (family) {
    case 'permuted':
      return permutedTask(i);
    case 'rotated':
      return rotatedTask(i);
    case 'split':
      return splitTask(i);
    default:
      throw new Error(`unknown task family ${JSON.stringify(family)}; expected one of ${TASK_FAMILIES.join(', ')}`);
  }
}

/** The inverse permutation q, with q[p[i]] = i: applying p then q gives the input back. */
export function invertPermutation(p: readonly number[]): number[] {
  const inv = new Array<number>(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]] = i;
  return inv;
}

/**
 * Applies a transform to `images` (count × width·height, row-major) and returns a new array; the
 * input is not modified. Split and identity return a copy.
 */
export function applyTransform(t: TaskTransform, images: Float32Array, width: number, height: number): Float32Array {
  const size = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`bad image size ${width} × ${height}`);
  }
  if (images.length % size !== 0) {
    throw new RangeError(`images has ${images.length} values, not a multiple of ${width} × ${height}`);
  }
  switch (t.kind) {
    case 'identity':
    case 'split':
      return images.slice();
    case 'permutation':
      return permute(t.permutation, images, size);
    case 'rotation':
      return rotate(t.degrees, images, width, height);
    default:
      throw new Error(`unknown transform kind ${JSON.stringify((t as { kind: unknown }).kind)}`);
  }
}

function permute(p: readonly number[], images: Float32Array, size: number): Float32Array {
  if (p.length !== size) throw new RangeError(`permutation has length ${p.length}, images have ${size} pixels`);
  const out = new Float32Array(images.length);
  for (let base = 0; base < images.length; base += size) {
    for (let i = 0; i < size; i++) out[base + i] = images[base + p[i]];
  }
  return out;
}

/** cos and sin of `degrees`, exact at multiples of 90°. */
function cosSin(degrees: number): [number, number] {
  const d = ((degrees % 360) + 360) % 360;
  if (d === 0) return [1, 0];
  if (d === 90) return [0, 1];
  if (d === 180) return [-1, 0];
  if (d === 270) return [0, -1];
  const r = (d * Math.PI) / 180;
  return [Math.cos(r), Math.sin(r)];
}

function rotate(degrees: number, images: Float32Array, width: number, height: number): Float32Array {
  if (!Number.isFinite(degrees)) throw new RangeError(`rotation degrees must be finite, got ${degrees}`);
  const size = width * height;
  const [c, s] = cosSin(degrees);
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  // Per output pixel, up to 4 (source index, weight) taps; -1 marks a tap outside the image.
  const idx = new Int32Array(size * 4).fill(-1);
  const w = new Float64Array(size * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      // Content turns counter-clockwise on screen (y down), so sample at the clockwise-turned offset.
      const sx = cx + c * dx - s * dy;
      const sy = cy + s * dx + c * dy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (y * width + x) * 4;
      const taps: [number, number, number][] = [
        [x0, y0, (1 - fx) * (1 - fy)],
        [x0 + 1, y0, fx * (1 - fy)],
        [x0, y0 + 1, (1 - fx) * fy],
        [x0 + 1, y0 + 1, fx * fy],
      ];
      taps.forEach(([tx, ty, tw], k) => {
        if (tw !== 0 && tx >= 0 && tx < width && ty >= 0 && ty < height) {
          idx[o + k] = ty * width + tx;
          w[o + k] = tw;
        }
      });
    }
  }
  const out = new Float32Array(images.length);
  for (let base = 0; base < images.length; base += size) {
    for (let i = 0; i < size; i++) {
      let v = 0;
      for (let k = 0; k < 4; k++) {
        const src = idx[i * 4 + k];
        if (src >= 0) v += w[i * 4 + k] * images[base + src];
      }
      out[base + i] = v;
    }
  }
  return out;
}

/** Indices of the examples that belong to the task: those with a label in `classes` for split, all otherwise. */
export function selectExamples(t: TaskTransform, labels: ArrayLike<number>): Uint32Array {
  if (t.kind !== 'split') return Uint32Array.from({ length: labels.length }, (_, i) => i);
  const keep = new Set(t.classes);
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) if (keep.has(labels[i])) out.push(i);
  return Uint32Array.from(out);
}

/** The task's label for an original class: its position in `classes` for split, unchanged otherwise. */
export function relabel(t: TaskTransform, label: number): number {
  if (t.kind !== 'split') return label;
  const j = t.classes.indexOf(label);
  if (j < 0) throw new RangeError(`label ${label} is not one of the split task's classes [${t.classes.join(', ')}]`);
  return j;
}

/** A task's view of a dataset: its examples (selectExamples), transformed pixels, task labels (relabel). */
export function taskDataset(t: TaskTransform, ds: Dataset, name = ds.name): Dataset {
  const size = ds.width * ds.height;
  const picked = selectExamples(t, ds.labels);
  const pixels = new Float32Array(picked.length * size);
  const labels = new Uint8Array(picked.length);
  picked.forEach((src, k) => {
    pixels.set(ds.images.subarray(src * size, (src + 1) * size), k * size);
    labels[k] = relabel(t, ds.labels[src]);
  });
  const images = t.kind === 'split' || t.kind === 'identity' ? pixels : applyTransform(t, pixels, ds.width, ds.height);
  return { name, images, labels, count: picked.length, width: ds.width, height: ds.height };
}

/**
 * Checks untrusted JSON (e.g. from a manifest) and returns a fresh, typed transform, or throws an
 * Error saying what is wrong. `pixels`, when given, is the image size a permutation must have. `fresh`: the value is
 * the caller's to give away (just parsed, referenced nowhere else), so a permutation array is kept, not copied
 * (a 2500-task manifest holds 2 million permutation entries: the copies cost ~0.1-0.5 s of a cold start).
 */
export function validateTransform(value: unknown, pixels?: number, fresh = false): TaskTransform {
  const fail = (msg: string): never => {
    throw new Error(`invalid task transform: ${msg}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('expected an object with a "kind"');
  const o = value as Record<string, unknown>;
  const allowKeys = (...keys: string[]) => {
    for (const k of Object.keys(o)) if (k !== 'kind' && !keys.includes(k)) fail(`unexpected field "${k}" for kind "${o.kind}"`);
  };
  switch (o.kind) {
    case 'identity':
      allowKeys();
      return { kind: 'identity' };
    case 'permutation': {
      allowKeys('seed', 'permutation');
      const seed = o.seed;
      if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
        fail(`permutation seed must be an integer in [0, 2^32), got ${JSON.stringify(seed)}`);
      }
      const p = o.permutation;
      if (!Array.isArray(p) || p.length === 0) fail('permutation must be a non-empty array of integers');
      const perm = p as unknown[];
      if (pixels !== undefined && perm.length !== pixels) fail(`permutation has length ${perm.length}, expected ${pixels}`);
      const seen = new Uint8Array(perm.length);
      for (let i = 0; i < perm.length; i++) {
        const v = perm[i];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= perm.length) {
          fail(`permutation[${i}] = ${JSON.stringify(v)} is not an integer in 0..${perm.length - 1}`);
        }
        if (seen[v as number]) fail(`permutation is not a permutation: ${v} appears twice (again at index ${i})`);
        seen[v as number] = 1;
      }
      return { kind: 'permutation', seed: seed as number, permutation: fresh ? (perm as number[]) : (perm as number[]).slice() };
    }
    case 'rotation': {
      allowKeys('degrees');
      if (typeof o.degrees !== 'number' || !Number.isFinite(o.degrees)) {
        fail(`rotation degrees must be a finite number, got ${JSON.stringify(o.degrees)}`);
      }
      return { kind: 'rotation', degrees: o.degrees as number };
    }
    case 'split': {
      allowKeys('classes');
      const c = o.classes;
      if (!Array.isArray(c) || c.length === 0) fail('split classes must be a non-empty array of class labels');
      const classes = c as unknown[];
      for (const v of classes) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
          fail(`split class ${JSON.stringify(v)} is not an integer label in 0..255`);
        }
      }
      if (new Set(classes).size !== classes.length) fail(`split classes [${classes.join(', ')}] contain a duplicate`);
      return { kind: 'split', classes: (classes as number[]).slice() };
    }
    default:
      return fail(`unknown kind ${JSON.stringify(o.kind)}; expected identity, permutation, rotation or split`);
  }
}
