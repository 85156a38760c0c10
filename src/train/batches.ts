// Deterministic minibatches for training one task: epochs of a seeded shuffle (Fisher–Yates with the
// project's Xoshiro128), the last incomplete batch of each epoch dropped (as a PyTorch DataLoader with
// drop_last). Each batch is written straight into the row-major input x [B, P] and its transpose
// xᵀ [P, B] (the weight gradient of the first layer needs xᵀ and the wasm backend's transpose is slow),
// with the task's pixel permutation applied on the fly and the model's normalisation (x − mean) / std.
import { invalid } from '../contract/errors.ts';
import { Xoshiro128, shuffle } from '../core/prng.ts';
import type { Normalization } from '../contract/model.ts';
import type { Dataset } from '../data/datasets.ts';
import { type TaskTransform, taskDataset } from '../data/transforms.ts';

/** A task's training examples: the base images plus, for permutations, the pixel map applied on read. */
export interface TaskSource {
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  pixels: number;
  /** Output pixel i reads input pixel map[i]; null: the images are already the task's images. */
  map: Int32Array | null;
}

/**
 * The task's view of a dataset. Permutations are applied lazily (no copy of a 60,000-image set per task);
 * rotations and splits build the transformed set once with the data module's taskDataset.
 */
export function taskSource(transform: TaskTransform, ds: Dataset): TaskSource {
  const pixels = ds.width * ds.height;
  if (transform.kind === 'permutation') {
    if (transform.permutation.length !== pixels) {
      throw new Error(`the permutation has ${transform.permutation.length} entries, the images ${pixels} pixels`);
    }
    return { images: ds.images, labels: ds.labels, count: ds.count, pixels, map: Int32Array.from(transform.permutation) };
  }
  if (transform.kind === 'identity') return { images: ds.images, labels: ds.labels, count: ds.count, pixels, map: null };
  const t = taskDataset(transform, ds);
  return { images: t.images, labels: t.labels, count: t.count, pixels, map: null };
}

export class BatchSampler {
  readonly batch: number;
  /** Row-major [batch, pixels]. */
  readonly x: Float32Array;
  /** Its transpose, [pixels, batch]. */
  readonly xT: Float32Array;
  readonly labels: Int32Array;
  private readonly order: Int32Array;
  private cursor: number;
  private readonly rng: Xoshiro128;
  private readonly scale: number;
  private readonly shift: number;

  constructor(
    private readonly source: TaskSource,
    batch: number,
    seed: number,
    norm: Normalization,
    /** Fill xT too (the tfjs products read it; the native ones transpose while packing). */
    private readonly transposed = true,
  ) {
    if (!Number.isInteger(batch) || batch < 1) throw invalid(`batch must be a positive integer, got ${batch}`);
    if (source.count < batch) throw invalid(`the task has ${source.count} training examples, fewer than one batch of ${batch}`);
    this.batch = batch;
    this.x = new Float32Array(batch * source.pixels);
    this.xT = new Float32Array(batch * source.pixels);
    this.labels = new Int32Array(batch);
    this.order = Int32Array.from({ length: source.count }, (_, i) => i);
    this.cursor = source.count; // forces a shuffle on the first batch
    this.rng = new Xoshiro128(seed);
    this.scale = 1 / norm.std;
    this.shift = -norm.mean / norm.std;
  }

  /** Fills x, xT and labels with the next batch. */
  next(): void {
    const { batch, source } = this;
    if (this.cursor + batch > source.count) {
      shuffle(this.order, this.rng);
      this.cursor = 0;
    }
    const p = source.pixels;
    const { x, xT, scale, shift, transposed } = this;
    const map = source.map;
    for (let b = 0; b < batch; b++) {
      const e = this.order[this.cursor + b];
      this.labels[b] = source.labels[e];
      const base = e * p;
      const row = b * p;
      if (map) {
        for (let i = 0; i < p; i++) {
          const v = source.images[base + map[i]] * scale + shift;
          x[row + i] = v;
          if (transposed) xT[i * batch + b] = v;
        }
      } else {
        for (let i = 0; i < p; i++) {
          const v = source.images[base + i] * scale + shift;
          x[row + i] = v;
          if (transposed) xT[i * batch + b] = v;
        }
      }
    }
    this.cursor += batch;
  }
}

/** Mean and standard deviation of every pixel of a dataset (population std), for a model's normalisation. */
export function pixelStatistics(ds: Dataset): Normalization {
  let sum = 0;
  let sq = 0;
  const v = ds.images;
  for (let i = 0; i < v.length; i++) {
    sum += v[i];
    sq += v[i] * v[i];
  }
  const mean = sum / v.length;
  return { mean, std: Math.sqrt(Math.max(0, sq / v.length - mean * mean)) };
}
