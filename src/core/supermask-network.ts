import { tf } from './tfjs.ts';
import { type Architecture, type LayerShape, layerShapes, maskWords, weightCount } from './architecture.ts';
import { type BaseNetwork } from './base-network.ts';
import { CandidateScratch } from './candidate-bank.ts';
import { type DeviceNetwork } from './kernels/device-network.ts';
import { type SignedBase, signedBase } from './kernels/forward-bits.ts';
import { type MaskKernels } from './kernels/mask-kernels.ts';
import { LruCache } from './lru-cache.ts';
import { BLOCK_SLOTS, MaskBank, popcount } from './mask-bank.ts';
import { batchWeightGradient, type DenseLayers, disposeDenseLayers, forward, gradientTrace, makeDenseLayers, maskKeeps } from './masked-mlp.ts';
import { type Objective } from '../contract/classify.ts';
import { objectiveGradient } from './objectives.ts';
import { type SplitOutput, superposedV, superposedVNative } from './superposed-pass.ts';
import { InputColumnSums, backgroundValue } from './background-split.ts';
import { LiveWords } from './live-words.ts';

/** Most V rows one `scores` pass takes in scoresOfVectors (see there), unless there are kernels.multiRowFrom or more. */
const SCORE_ROWS_PER_PASS = 4;

/** Tasks whose masked dense weights stay cached for the given-task path. */
const MASKED_CACHE_SIZE = 16;

/** Masks packed in the bank layout: the whole bank, or a subset gathered into a bank of its own. */
export interface PackedSlots {
  readonly raw: Uint32Array;
  readonly blocks: number;
  /** A subset's bank slot at each position (candidate-bank.ts); the one-example scores' background split needs it. */
  readonly slots?: Int32Array;
  /** A subset holding only the words a search from one example reads (live-words.ts); it has `slots` then. */
  readonly live?: LiveWords;
}

/**
 * The frozen base network together with the mask bank: builds the dense weights a pass needs
 * (one task's W ⊙ M^t, or a superposition W ⊙ Σ α_i M^i with uniform α over a set of slots) and turns one
 * backward pass into the per-slot gradients ∂obj/∂α_i through the bit-matrix kernel.
 */
export class SupermaskNetwork {
  readonly architecture: Architecture;
  readonly shapes: LayerShape[];
  readonly words: number;
  readonly bank: MaskBank;
  /** The base network as sign bits and c_l (for the kernels that work from bits). */
  readonly signed: SignedBase;
  /**
   * S_t of the input layer, for the background split of one-example scores (background-split.ts). Only with
   * kernels that count them natively: the others' `scores` read every word whatever V holds, so the split
   * would add the sums' cost and save nothing.
   */
  readonly inputColumnSums: InputColumnSums | null;
  /** Reused by binary search's candidate banks (candidate-bank.ts). */
  readonly candidateScratch = new CandidateScratch();
  private readonly base: BaseNetwork;
  /** The base layers as tensors, made on first use (a network that runs from the bits never needs them). */
  private baseTensorsMade: tf.Tensor2D[] | null = null;
  private readonly maskedCache: LruCache<number, DenseLayers>;
  private fullSuperposition: DenseLayers | null = null;
  /** V of scoresFromCounts (zero past P): reused, P floats. */
  private readonly vScratch: Float32Array;
  /** δ_0 of scoresFromCounts' split: n_1 values. */
  private readonly delta0: Float64Array;
  /** The forward's background term of a split over live words (live-words.ts), and the column totals it is made of: n_1 values. */
  private readonly inputTerm: Float64Array;
  private readonly inputTotals: Int32Array;
  /** vRows' buffer. */
  private vRowScratch = new Float32Array(0);
  /** The base layers back to back, for the native superposed pass (made on first use). */
  private flatWeights: Float32Array | null = null;
  /** The bank and base network on the kernels' device, when they have one: the passes below then run there. */
  private readonly device: DeviceNetwork | null;

  constructor(
    base: BaseNetwork,
    readonly kernels: MaskKernels,
    expectedTasks = 0,
  ) {
    this.base = base;
    this.architecture = base.architecture;
    this.shapes = layerShapes(base.architecture);
    this.words = maskWords(base.architecture);
    this.bank = new MaskBank(this.words, expectedTasks, kernels.subsetCount.bind(kernels));
    this.signed = signedBase(base.architecture, base.seed);
    this.maskedCache = new LruCache(MASKED_CACHE_SIZE, disposeDenseLayers);
    this.device = kernels.bindNetwork?.(base, this.bank) ?? null;
    this.vScratch = new Float32Array(this.words * 32);
    const input = this.shapes[0];
    this.inputColumnSums = kernels.columnSums ? new InputColumnSums(kernels.columnSums, this.words, this.signed.signs, input.in, input.out) : null;
    this.delta0 = new Float64Array(input.out);
    this.inputTerm = new Float64Array(input.out);
    this.inputTotals = new Int32Array(input.out);
  }

  addMask(mask: Uint32Array): number {
    const slot = this.bank.add(mask);
    this.inputColumnSums?.added(slot);
    this.device?.bankChanged(slot);
    this.invalidateSuperposition();
    return slot;
  }

  removeMask(slot: number): void {
    this.bank.remove(slot);
    this.inputColumnSums?.removed(slot);
    this.device?.bankChanged(slot);
    this.maskedCache.delete(slot);
    this.invalidateSuperposition();
  }

  /** W ⊙ M^t for one slot; cached (bounded LRU) because the given-task path reuses it request after request. */
  masked(slot: number): DenseLayers {
    return this.maskedCache.getOrCreate(slot, () => {
      const mask = this.bank.get(slot);
      return this.denseFrom((w) => +maskKeeps(mask, w));
    });
  }

  /** W ⊙ (Σ_i M^i) / k over all stored slots: one dense network, cached until the bank changes. */
  superposed(): DenseLayers {
    this.fullSuperposition ??= this.denseFrom(scaledCounts(this.bank.count, this.bank.taskCount));
    return this.fullSuperposition;
  }

  /** W ⊙ (Σ_{i∈slots} M^i) / |slots| for a subset of the bank's slots. The caller disposes it. */
  subsetSuperposition(slots: Int32Array): DenseLayers {
    const counts = new Float32Array(this.words * 32);
    this.kernels.subsetCount(this.bank.raw, this.words, slots, counts);
    return this.countsSuperposition(counts, slots.length);
  }

  /** W ⊙ counts / n from a per-weight count of n masks, multiplied on the tfjs backend. The caller disposes it. */
  countsSuperposition(counts: Float32Array, n: number): DenseLayers {
    const weights = this.shapes.map((shape, l) =>
      tf.tidy(() => {
        const c = tf.tensor2d(counts.subarray(shape.offset, shape.offset + shape.in * shape.out), [shape.in, shape.out]);
        return tf.keep(tf.mul(this.baseTensors[l], tf.div(c, n)) as tf.Tensor2D);
      }),
    );
    return makeDenseLayers(weights);
  }

  /**
   * ∂obj/∂α_i for every slot of `bank` over the superposition W ⊙ counts / n, for one example, without tfjs
   * (superposed-pass.ts). `counts` is Σ M^i over the n superposed masks (the bank's own count for all of them).
   * Split at the input's background (background-split.ts) when it has one and `bank` says which slots it holds:
   * the pass then reads only the words of the bank where x differs from the background or later layers are live.
   * `background`: splitBackground(x), where the caller has it already.
   */
  scoresFromCounts(
    counts: Uint16Array | Float32Array,
    n: number,
    x: Float32Array,
    objective: Objective,
    bank: PackedSlots = this.bank,
    background?: number,
  ): Float32Array {
    if (bank.live) return this.liveScores(counts, n, x, objective, bank);
    const subset = bank === this.bank ? undefined : bank.slots;
    const sums = this.inputColumnSums;
    const x0 = sums && (bank === this.bank || subset) ? (background ?? backgroundValue(x)) : 0;
    const split = x0 !== 0 ? { x0, delta0: this.delta0 } : undefined;
    this.oneV(counts, n, x, objective, this.vScratch, split);
    const out = this.scoresOfVectors(this.vScratch, 1, bank);
    if (split) sums!.addTerm(this.bank, x0 * this.signed.scales[0], this.delta0, subset, out);
    return out;
  }

  /**
   * The background x0 at which the scores of one example `x` split (background-split.ts), 0 where they do not. Split,
   * its own pass reads only the words its foreground and the later layers reach (a digit: ~40% of the bank), where a
   * pass over several rows at once reads every word for all of them.
   */
  splitBackground(x: Float32Array): number {
    return this.inputColumnSums ? backgroundValue(x) : 0;
  }

  /**
   * The words a search from one example `x` needs (live-words.ts), or null where its scores do not split (no
   * column sums, or no background in x): its candidate banks then hold whole masks.
   */
  liveWords(x: Float32Array): LiveWords | null {
    const x0 = this.inputColumnSums ? backgroundValue(x) : 0;
    return x0 !== 0 ? new LiveWords(this.shapes, x, x0, (length) => this.candidateScratch.zeros(length)) : null;
  }

  /** scoresFromCounts over a bank of live words: the forward's background term from its slots' column sums. */
  private liveScores(counts: Uint16Array | Float32Array, n: number, x: Float32Array, objective: Objective, bank: PackedSlots): Float32Array {
    const live = bank.live!, slots = bank.slots!, sums = this.inputColumnSums!;
    const scale = live.x0 * this.signed.scales[0];
    sums.totals(this.bank, slots, this.inputTotals);
    for (let j = 0; j < this.inputTerm.length; j++) this.inputTerm[j] = scale * this.inputTotals[j];
    this.oneV(counts, n, x, objective, live.v, { x0: live.x0, delta0: this.delta0, live: { rows: live.rows, term: this.inputTerm } });
    const out = this.scoresOfVectors(live.v, 1, bank);
    sums.addTerm(this.bank, scale, this.delta0, slots, out);
    return out;
  }

  /** Counts the column sums of tasks added since the last inferred pass (background-split.ts), now. */
  prepareInference(): void {
    this.inputColumnSums?.current(this.bank);
  }

  /**
   * Set bits of every slot's mask (0 for an empty slot): one `scores` pass with v = 1 on the P weights, exact while
   * every partial sum is an integer below 2^24 (float32); past that, mask by mask.
   */
  setBitsPerSlot(): Float32Array {
    const p = weightCount(this.architecture);
    const out = new Float32Array(this.bank.slotCapacity);
    if (p < 2 ** 24) {
      this.kernels.scores(this.bank.raw, this.words, this.bank.blocks, new Float32Array(this.words * 32).fill(1, 0, p), 1, out);
    } else {
      for (let s = 0; s < out.length; s++) out[s] = this.bank.has(s) ? popcount(this.bank.get(s)) : 0;
    }
    return out;
  }

  /** V of one example over W ⊙ counts / n into v (superposed-pass.ts): in the addon where it has the pass. */
  private oneV(counts: Uint16Array | Float32Array, n: number, x: Float32Array, objective: Objective, v: Float32Array, split?: SplitOutput): void {
    const kernel = this.kernels.superposed, classes = this.architecture.classes;
    if (!kernel) return superposedV(this.base.layers, this.shapes, counts, n, x, objective, classes, v, split);
    this.flatWeights ??= concatLayers(this.base.layers);
    superposedVNative(kernel, this.flatWeights, this.signed.sizes, counts, n, x, objective, classes, v, split);
  }

  /** Whether the bank and base network live on the kernels' device (the passes then run there). */
  get onDevice(): boolean {
    return this.device !== null;
  }

  /** Logits of W ⊙ M^slot for x: decoded from the packed bits on the device, else through the cached dense layers. */
  taskLogits(slot: number, x: tf.Tensor2D): tf.Tensor2D {
    if (!this.device) return forward(this.masked(slot).weights, x);
    const logits = this.device.taskLogits(slot, x.dataSync() as Float32Array, x.shape[0]);
    return tf.tensor2d(logits, [x.shape[0], this.architecture.outputs]);
  }

  /** slotGradients over the superposition of `slots` (all stored slots when omitted), on the device when there is one. */
  gradientsOver(x: tf.Tensor2D, objective: Objective, perExample: boolean, slots?: Int32Array): Float32Array {
    if (this.device) {
      return this.device.slotGradients(slots ?? this.bank.occupiedSlots(), x.dataSync() as Float32Array, x.shape[0], objective, perExample);
    }
    if (!slots) return this.slotGradients(this.superposed(), x, objective, perExample);
    const layers = this.subsetSuperposition(slots);
    try {
      return this.slotGradients(layers, x, objective, perExample);
    } finally {
      disposeDenseLayers(layers);
    }
  }

  /**
   * ∂obj/∂α_i for every slot of the bank (a multiple of 8; empty slots read 0 and must be ignored by the caller).
   * `perExample` false: the objective is averaged over the batch, one score row. True: one row per example.
   * `bank`: the slots to score, by default the whole bank (binary search passes its packed candidates).
   */
  slotGradients(layers: DenseLayers, x: tf.Tensor2D, objective: Objective, perExample: boolean, bank: PackedSlots = this.bank): Float32Array {
    const batch = x.shape[0];
    const classes = this.architecture.classes;
    const { inputs, deltas } = gradientTrace(layers, x, (logits) => {
      const g = objectiveGradient(objective, logits, classes);
      return perExample ? g : tf.div(g, batch);
    });
    try {
      if (perExample && this.kernels.scoresOuter) return this.outerScores(inputs, deltas, bank);
      const rows = perExample ? batch : 1;
      return this.scoresOfVectors(this.vFromTrace(inputs, deltas, perExample), rows, bank);
    } finally {
      tf.dispose([...inputs, ...deltas]);
    }
  }

  /**
   * V of the superposition of every stored mask for x (the objective averaged over its rows), written into
   * `v` (words · 32 floats, whose padding past P is left as is). One example in plain arrays or the addon
   * (superposed-pass.ts), more through tfjs. CPU only.
   */
  superpositionV(x: tf.Tensor2D, objective: Objective, v: Float32Array): void {
    const batch = x.shape[0];
    if (batch === 1) return this.oneV(this.bank.count, this.bank.taskCount, x.dataSync() as Float32Array, objective, v);
    const classes = this.architecture.classes;
    const { inputs, deltas } = gradientTrace(this.superposed(), x, (logits) => tf.div(objectiveGradient(objective, logits, classes), batch));
    try {
      v.set(this.vFromTrace(inputs, deltas, false));
    } finally {
      tf.dispose([...inputs, ...deltas]);
    }
  }

  /**
   * Room for `rows` V rows (zero past P), reused from call to call: a fresh buffer of merged rows costs more
   * in page faults than the bank pass it feeds (~10 MB for 8 rows at P = 315,200; measured ~50 ms a call).
   */
  vRows(rows: number): Float32Array {
    const length = rows * this.words * 32;
    if (this.vRowScratch.length < length) this.vRowScratch = new Float32Array(length);
    return this.vRowScratch.subarray(0, length);
  }

  /**
   * `scores` of `rows` V rows over `bank`, at most SCORE_ROWS_PER_PASS rows per pass: the single-vector kernel
   * reuses each bank chunk from L1 for up to 4 rows (measured at k = 2500: 4 rows cost 2.35 × one), where more
   * rows' tables spill out of L1. From the kernels' multiRowFrom rows on, all rows go in one call, which the
   * native kernels run as one multi-row pass (rows in SIMD lanes; native-addon.ts says where it pays).
   */
  scoresOfVectors(v: Float32Array, rows: number, bank: PackedSlots = this.bank): Float32Array {
    const words = bank.live?.words.length ?? this.words;
    const padded = words * 32, width = bank.blocks * BLOCK_SLOTS;
    const out = new Float32Array(rows * width);
    const perPass = rows >= (this.kernels.multiRowFrom ?? Infinity) ? rows : SCORE_ROWS_PER_PASS;
    for (let r = 0; r < rows; r += perPass) {
      const n = Math.min(perPass, rows - r);
      this.kernels.scores(bank.raw, words, bank.blocks, v.subarray(r * padded, (r + n) * padded), n, out.subarray(r * width, (r + n) * width));
    }
    return out;
  }

  /** V rows from a trace: the batch's sum (deltas already scaled by the caller), or one row per example. */
  private vFromTrace(inputs: tf.Tensor2D[], deltas: tf.Tensor2D[], perExample: boolean): Float32Array {
    const padded = this.words * 32;
    const rows = perExample ? inputs[0].shape[0] : 1;
    const v = new Float32Array(rows * padded);
    this.shapes.forEach((shape, l) => {
      // V = ∂obj/∂W_eff ⊙ W: the mask-independent factor of every ∂obj/∂α_i.
      const values = tf.tidy(() => {
        const w = this.baseTensors[l];
        if (!perExample) return tf.mul(batchWeightGradient(inputs[l], deltas[l]), w);
        const outer = tf.mul(tf.expandDims(inputs[l], 2), tf.expandDims(deltas[l], 1));
        return tf.mul(outer, tf.expandDims(w, 0));
      });
      const data = values.dataSync() as Float32Array;
      values.dispose();
      const size = shape.in * shape.out;
      for (let r = 0; r < rows; r++) v.set(data.subarray(r * size, (r + 1) * size), r * padded + shape.offset);
    });
    return v;
  }

  /** Per-example scores fused from the layer inputs and deltas: no examples × P matrix of V is built. */
  private outerScores(inputs: tf.Tensor2D[], deltas: tf.Tensor2D[], bank: PackedSlots): Float32Array {
    const concat = (ts: tf.Tensor2D[]) => {
      const parts = ts.map((t) => t.dataSync() as Float32Array);
      const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((o, p) => (all.set(p, o), o + p.length), 0);
      return all;
    };
    const rows = inputs[0].shape[0];
    const out = new Float32Array(rows * bank.blocks * BLOCK_SLOTS);
    const { signs, sizes, scales } = this.signed;
    this.kernels.scoresOuter!(bank.raw, this.words, bank.blocks, signs, sizes, scales, concat(inputs), concat(deltas), rows, out);
    return out;
  }

  dispose(): void {
    this.maskedCache.clear();
    this.invalidateSuperposition();
    if (this.baseTensorsMade) tf.dispose(this.baseTensorsMade);
    this.device?.dispose();
  }

  private get baseTensors(): tf.Tensor2D[] {
    this.baseTensorsMade ??= this.shapes.map((s, l) => tf.keep(tf.tensor2d(this.base.layers[l], [s.in, s.out])));
    return this.baseTensorsMade;
  }

  private invalidateSuperposition(): void {
    if (this.fullSuperposition) disposeDenseLayers(this.fullSuperposition);
    this.fullSuperposition = null;
  }

  /** Dense layers W_l ⊙ factor(w) for a per-weight factor given as an array or a function of the flat index. */
  private denseFrom(factor: Float32Array | ((w: number) => number)): DenseLayers {
    const weights = this.shapes.map((shape, l) => {
      const src = this.base.layers[l];
      const dst = new Float32Array(src.length);
      const o = shape.offset;
      if (typeof factor === 'function') for (let i = 0; i < src.length; i++) dst[i] = src[i] * factor(o + i);
      else for (let i = 0; i < src.length; i++) dst[i] = src[i] * factor[o + i];
      return tf.keep(tf.tensor2d(dst, [shape.in, shape.out]));
    });
    return makeDenseLayers(weights);
  }
}

function concatLayers(layers: Float32Array[]): Float32Array {
  const out = new Float32Array(layers.reduce((n, l) => n + l.length, 0));
  layers.reduce((o, l) => (out.set(l, o), o + l.length), 0);
  return out;
}

function scaledCounts(counts: Uint16Array | Float32Array, k: number): Float32Array {
  const out = new Float32Array(counts.length);
  if (k === 0) return out;
  const inv = 1 / k;
  for (let i = 0; i < counts.length; i++) out[i] = counts[i] * inv;
  return out;
}
