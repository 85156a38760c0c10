// The classify API for a HopSupSup model, the counterpart of Engine for a Hopfield reservoir of neuron
// masks. No mask is stored: with a task id, the mask is the reservoir's attractor reached from the task's
// stored cue (computed once per task and kept); without one, it is recalled from the request's batch
// (recallFromData), then the batch is classified with it. The reported task is the stored task whose
// cue-recalled mask is nearest the recalled one; `unknown` when none matches it bit for bit.
//
// Batch norm normalises over the request's batch (the paper's network has no running statistics), so a
// call needs at least 2 examples, all of one task.
import { tf } from './tfjs.ts';
import type { Architecture } from './architecture.ts';
import type { ClassifyCall, ClassifyLimits, Prediction } from '../contract/classify.ts';
import { invalid, noTasks, taskExists, taskNotFound } from '../contract/errors.ts';
import { prediction } from './engine.ts';
import { type HopfieldReservoir, agreement, maskOf } from './hopfield-reservoir.ts';
import { type RecallOptions, recallFromData } from './mask-recall.ts';
import { NeuronMaskedNetwork, maskTensors } from './neuron-masked-network.ts';

export interface HopfieldTaskCue {
  id: string;
  /** Per hidden layer: neuron → ±1. */
  cues: ReadonlyMap<number, number>[];
}

export class HopfieldEngine {
  readonly architecture: Architecture;
  readonly limits: ClassifyLimits;
  private readonly net: NeuronMaskedNetwork;
  private reservoirs: HopfieldReservoir[];
  private readonly taskCues = new Map<string, HopfieldTaskCue['cues']>();
  private readonly taskMasks = new Map<string, Uint8Array[]>();

  constructor(
    config: { architecture: Architecture; seed: number; reservoirs: HopfieldReservoir[]; tasks: HopfieldTaskCue[]; maxBatch?: number },
    private readonly recall: RecallOptions = {},
  ) {
    this.architecture = config.architecture;
    this.net = new NeuronMaskedNetwork(config.architecture, config.seed);
    this.reservoirs = config.reservoirs;
    this.limits = {
      inputSize: config.architecture.inputSize,
      classes: config.architecture.classes,
      maxBatch: config.maxBatch ?? 1024,
      hasSuperfluous: false,
      epsilon: 0,
      rerank: 1,
    };
    for (const t of config.tasks) this.taskCues.set(t.id, t.cues);
    this.recallEveryTask();
  }

  get taskCount(): number {
    return this.taskMasks.size;
  }

  /** Bytes of the reservoirs: constant, whatever the number of tasks. */
  get reservoirBytes(): number {
    return this.reservoirs.reduce((n, r) => n + r.weights.byteLength + r.patternSum.byteLength, 0);
  }

  /** The mask a task id addresses (recalled from its cue). */
  maskOf(id: string): Uint8Array[] {
    const masks = this.taskMasks.get(id);
    if (!masks) throw taskNotFound(id);
    return masks;
  }

  /** Switches to reservoirs that hold one more task (already stored by the caller) and its cue. */
  addTask(reservoirs: HopfieldReservoir[], task: HopfieldTaskCue): Uint8Array[] {
    if (this.taskMasks.has(task.id)) throw taskExists(task.id);
    this.reservoirs = reservoirs;
    this.taskCues.set(task.id, task.cues);
    this.recallEveryTask();
    return this.maskOf(task.id);
  }

  classify(call: ClassifyCall): Prediction[] {
    if (call.batch < 2) {
      throw invalid('a HopSupSup model normalises over the batch (batch norm without running statistics): send at least 2 examples of one task');
    }
    const x = tf.tensor2d(call.inputs, [call.batch, this.limits.inputSize]);
    try {
      let masks: Uint8Array[];
      let task: Prediction['task'];
      if (call.task !== undefined) {
        masks = this.maskOf(call.task);
        task = { id: call.task, inferred: false, confidence: 1, unknown: false };
      } else {
        if (this.taskMasks.size === 0) throw noTasks();
        masks = recallFromData(this.net, this.reservoirs, x, this.recall).masks;
        task = this.nearestTask(masks);
      }
      const mt = maskTensors(masks);
      const probabilities = tf.tidy(() => tf.softmax(tf.slice(this.net.logits(x, mt), [0, 0], [-1, this.limits.classes])).dataSync() as Float32Array);
      tf.dispose(mt);
      const classes = this.limits.classes;
      return Array.from({ length: call.batch }, (_, row) => prediction(probabilities.subarray(row * classes, (row + 1) * classes), call.topK, task));
    } finally {
      x.dispose();
    }
  }

  dispose(): void {
    this.net.dispose();
  }

  /** What each task's cue reaches; redone after every add, since a new pattern can move the other attractors. */
  private recallEveryTask(): void {
    for (const [id, cues] of this.taskCues) this.taskMasks.set(id, this.reservoirs.map((r, l) => maskOf(r.recallFromCue(cues[l]).pattern)));
  }

  private nearestTask(masks: Uint8Array[]): Prediction['task'] {
    const width = masks.reduce((n, m) => n + m.length, 0);
    let best = { id: '', same: -1 };
    for (const [id, stored] of this.taskMasks) {
      const same = stored.reduce((n, m, l) => n + agreement(m, masks[l]), 0);
      if (same > best.same) best = { id, same };
    }
    return { id: best.id, inferred: true, confidence: best.same / width, unknown: best.same < width };
  }
}
