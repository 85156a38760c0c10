// Supermask training for one task (edge-popup with the straight-through estimator) on the frozen base
// network. Every layer has real scores S (same shape as W, initialised uniform in ±1/sqrt(fan_in)); the
// forward pass uses W ⊙ M(S), with M = 1[S ≥ 0] (GN style) or the top `density` of |S| per layer (GG
// style); the loss is the cross-entropy over all s outputs with labels 0..l−1, averaged over the batch;
// the gradient w.r.t. M is passed straight through to S, ∂L/∂S = ∂L/∂W_eff ⊙ W; the optimiser is RMSProp
// with PyTorch's defaults (alpha 0.99, eps 1e-8, no momentum, no weight decay).
//
// Split of the work: the matrix products (forward, deltas, weight gradients) are step-products.ts (the
// addon's GEMM, or tfjs on the active backend); the per-weight work (mask, W ⊙ M, RMSProp) is score-update.ts.
// Deterministic given the seed: the same seed, data and options give the same mask bit for bit with the same
// products.
import { invalid } from '../contract/errors.ts';
import type { Normalization } from '../contract/model.ts';
import { maskDensity } from '../core/mask-bank.ts';
import {
  type MaskStyle,
  crossEntropyGradient,
  keptPerLayer,
  maskByMagnitude,
  maskFromScores,
  topKThreshold,
} from '../core/masked-mlp.ts';
import { type LayerShape, layerShapes, maskWords, weightCount } from '../core/architecture.ts';
import { type BaseNetwork } from '../core/base-network.ts';
import { Xoshiro128, deriveSeed } from '../core/prng.ts';
import { type ScoreUpdate } from '../core/score-update.ts';
import { selectScoreUpdate } from '../platform/kernels.ts';
import { BatchSampler, type TaskSource } from './batches.ts';
import { type StepProducts, selectStepProducts } from './step-products.ts';

export interface TrainOptions extends OptimizerOptions {
  /** Optimiser steps (batches). The paper: 1000. */
  steps: number;
  /** The paper: 128. */
  batch: number;
  normalization: Normalization;
  /** Return the final scores (for transfer or resuming). */
  keepScores?: boolean;
  /** Called every `progressEvery` steps and after the last one. */
  onProgress?: (p: TrainProgress) => void;
  progressEvery?: number;
}

export interface TrainProgress {
  step: number;
  steps: number;
  /** Mean loss over the steps since the previous report. */
  loss: number;
  /** Training accuracy (argmax over the l real classes) over the same steps. */
  accuracy: number;
}

export interface TrainedTask extends TaskStats {
  mask: Uint32Array;
  scores?: Float32Array[];
}

/** What a finished task reports besides its mask. */
export interface TaskStats {
  /** Fraction of weights kept. */
  density: number;
  /** Mean loss and accuracy over the first and the last 10% of steps (at least one step each). */
  firstLoss: number;
  finalLoss: number;
  finalAccuracy: number;
  steps: number;
  /** Wall time of the optimisation loop. */
  ms: number;
}

/** The seed of task `index` for a run seeded by `runSeed`: independent of which worker trains it. */
export function taskSeed(runSeed: number, index: number): number {
  return deriveSeed(runSeed, index, 0);
}

export function initialScores(shapes: LayerShape[], seed: number): Float32Array[] {
  const rng = new Xoshiro128(deriveSeed(seed, 0, 1));
  return shapes.map((s) => {
    const bound = 1 / Math.sqrt(s.in);
    const a = new Float32Array(s.in * s.out);
    for (let i = 0; i < a.length; i++) a[i] = (2 * rng.nextFloat() - 1) * bound;
    return a;
  });
}

export interface OptimizerOptions {
  /** RMSProp learning rate. The paper: 1e-4. */
  lr: number;
  /** RMSProp smoothing constant (PyTorch default 0.99). */
  alpha?: number;
  /** RMSProp epsilon (PyTorch default 1e-8). */
  eps?: number;
  mask: MaskStyle;
  /** GG masks: fraction of each layer's weights kept. Ignored for GN. */
  density?: number;
  /** Seed of the score initialisation (ignored with initScores) and, in trainSupermask, of the batch order. */
  seed: number;
  /** Transfer: start from these scores (one array per layer) instead of the random init. Not modified. */
  initScores?: Float32Array[];
  /** RMSProp and mask updates (default: native when built; same bits either way). */
  update?: ScoreUpdate;
  /** The matrix products (default: the native GEMM when built, else tfjs; equal to float rounding). */
  products?: StepProducts;
}

/**
 * The scores of one task and their RMSProp state: `step` trains on one batch, `mask` packs the current
 * binary mask. trainSupermask drives it over a task's batches; the NN stream (stream.ts) over a stream.
 */
export class SupermaskOptimizer {
  readonly scores: Float32Array[];
  private readonly shapes: LayerShape[];
  private readonly sq: Float32Array[];
  private readonly weff: Float32Array[];
  private readonly weffT: Float32Array[];
  private readonly scratch: Float32Array;
  private readonly thresholds: Float64Array;
  private readonly density: number;
  private readonly alpha: number;
  private readonly eps: number;
  private dLogits = new Float32Array(0);
  private readonly update: ScoreUpdate;
  private readonly products: StepProducts;

  constructor(
    private readonly base: BaseNetwork,
    private readonly options: OptimizerOptions,
  ) {
    this.shapes = layerShapes(base.architecture);
    if (!(options.lr > 0)) throw invalid(`lr must be positive, got ${options.lr}`);
    this.density = options.density ?? 0.5;
    if (options.mask === 'gg' && !(this.density > 0 && this.density <= 1)) {
      throw invalid(`density must be in (0, 1], got ${this.density}`);
    }
    this.alpha = options.alpha ?? 0.99;
    this.eps = options.eps ?? 1e-8;
    this.update = options.update ?? selectScoreUpdate();
    this.products = options.products ?? selectStepProducts();
    const sizes = this.shapes.map((sh) => sh.in * sh.out);
    this.scores = options.initScores ? options.initScores.map((a) => a.slice()) : initialScores(this.shapes, options.seed);
    this.scores.forEach((a, l) => {
      if (a.length !== sizes[l]) throw new Error(`initial scores of layer ${l} have the wrong size`);
    });
    this.sq = sizes.map((n) => new Float32Array(n));
    this.weff = sizes.map((n) => new Float32Array(n));
    this.weffT = sizes.map((n, l) => new Float32Array(l > 0 && this.products.usesTransposes ? n : 0));
    this.scratch = new Float32Array(Math.max(...sizes));
    this.thresholds = new Float64Array(sizes.length);
    this.refreshWeights();
  }

  /**
   * One RMSProp step on a batch: x [B, inputs] normalised, xT its transpose, labels in 0..l−1.
   * Returns the batch's mean loss and its number of correct argmax predictions (before the update).
   */
  step(x: Float32Array, xT: Float32Array, labels: Int32Array): { loss: number; correct: number } {
    const arch = this.base.architecture;
    const { shapes, weff } = this;
    const B = labels.length;
    const L = shapes.length;
    const s = arch.outputs;
    if (this.dLogits.length !== B * s) this.dLogits = new Float32Array(B * s);
    let result = { loss: 0, correct: 0 };
    const grads = this.products.run(x, xT, B, shapes, weff, this.weffT, (logits) => {
      result = crossEntropyGradient(logits, labels, B, s, arch.classes, this.dLogits);
      return this.dLogits;
    });
    // RMSProp on the scores with the straight-through gradient ∂L/∂S = ∂L/∂W_eff ⊙ W.
    for (let l = 0; l < L; l++) this.update.rmspropStep(this.scores[l], this.sq[l], grads[l], this.base.layers[l], this.options.lr, this.alpha, this.eps);
    this.refreshWeights();
    return result;
  }

  /** Whether step reads xT (the tfjs products do). */
  get usesTransposes(): boolean {
    return this.products.usesTransposes;
  }

  /** The current binary mask, canonical packed layout. */
  mask(): Uint32Array {
    return maskFromScores(this.scores, this.options.mask, this.thresholds, maskWords(this.base.architecture));
  }

  /** Effective weights W ⊙ M from the current scores (and their transposes for layers past the first). */
  private refreshWeights(): void {
    for (let l = 0; l < this.shapes.length; l++) {
      const S = this.scores[l];
      if (this.options.mask === 'gg') {
        const thr = (this.thresholds[l] = topKThreshold(S, keptPerLayer(S.length, this.density), this.scratch));
        maskByMagnitude(S, this.base.layers[l], thr, this.weff[l]);
      } else {
        this.update.maskBySign(S, this.base.layers[l], this.weff[l]);
      }
      if (l > 0 && this.products.usesTransposes) transposeInto(this.weff[l], this.shapes[l].in, this.shapes[l].out, this.weffT[l]);
    }
  }
}

export function trainSupermask(base: BaseNetwork, source: TaskSource, options: TrainOptions): TrainedTask {
  const arch = base.architecture;
  if (source.pixels !== arch.inputSize) throw new Error(`examples have ${source.pixels} values, the model takes ${arch.inputSize}`);
  const steps = options.steps;
  if (!Number.isInteger(steps) || steps < 1) throw invalid(`steps must be a positive integer, got ${steps}`);
  const optimizer = new SupermaskOptimizer(base, options);
  const sampler = new BatchSampler(source, options.batch, deriveSeed(options.seed, 0, 2), options.normalization, optimizer.usesTransposes);
  const window = Math.max(1, Math.round(steps / 10));
  let firstLoss = 0;
  const last = new StepMeans();
  let report = new StepMeans();
  const every = options.progressEvery ?? 50;
  const start = performance.now();
  for (let step = 1; step <= steps; step++) {
    sampler.next();
    const { loss, correct } = optimizer.step(sampler.x, sampler.xT, sampler.labels);
    const acc = correct / options.batch;
    report.add(loss, acc);
    if (step <= window) firstLoss += loss / window;
    if (step > steps - window) last.add(loss, acc);
    if (options.onProgress && (step % every === 0 || step === steps)) {
      options.onProgress({ step, steps, loss: report.loss, accuracy: report.accuracy });
      report = new StepMeans();
    }
  }
  const ms = performance.now() - start;
  const mask = optimizer.mask();
  return {
    mask,
    density: maskDensity(mask, weightCount(arch)),
    firstLoss,
    finalLoss: last.loss,
    finalAccuracy: last.accuracy,
    steps,
    ms,
    scores: options.keepScores ? optimizer.scores : undefined,
  };
}

/** Mean loss and accuracy over the steps added so far. */
class StepMeans {
  private lossSum = 0;
  private accuracySum = 0;
  private count = 0;

  add(loss: number, accuracy: number): void {
    this.lossSum += loss;
    this.accuracySum += accuracy;
    this.count++;
  }

  get loss(): number {
    return this.lossSum / this.count;
  }

  get accuracy(): number {
    return this.accuracySum / this.count;
  }
}

function transposeInto(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    for (let j = 0; j < cols; j++) dst[j * rows + i] = src[r + j];
  }
}
