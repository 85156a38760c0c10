// The engine worker's side of a HopSupSup model directory (src/model/hopfield-model.ts): opening it into
// a HopfieldEngine and adding tasks, durable first. engine-worker.ts hands a model of this kind here.
import type { BackendPreference } from '../platform/preferences.ts';
import { SupsupError, invalid, taskNotFound } from '../contract/errors.ts';
import type { TaskInfo, TaskSpec } from '../contract/task.ts';
import { HopfieldEngine, type HopfieldTaskCue } from '../core/hopfield-engine.ts';
import { type HopfieldModel, type HopfieldTask, addHopfieldTasks, cueOfTask, loadHopfieldModel } from '../model/hopfield-model.ts';
import { selectBackend } from '../platform/backend.ts';
import type { ModelInfo } from './worker-protocol.ts';

export class HopfieldWorkerModel {
  private constructor(
    readonly dir: string,
    private model: HopfieldModel,
    readonly engine: HopfieldEngine,
  ) {}

  static async open(dir: string, options: { backend: BackendPreference; maxBatch: number }): Promise<{ opened: HopfieldWorkerModel; info: ModelInfo }> {
    const backend = await selectBackend(options.backend);
    const model = await loadHopfieldModel(dir);
    const { architecture, seed, rule } = model.manifest;
    const engine = new HopfieldEngine({ architecture, seed, reservoirs: model.reservoirs, tasks: model.manifest.tasks.map((t) => cuesOf(model, t)), maxBatch: options.maxBatch });
    const opened = new HopfieldWorkerModel(dir, model, engine);
    const info: ModelInfo = {
      dir,
      architecture,
      seed,
      normalization: { mean: 0, std: 1 },
      limits: engine.limits,
      epsilonSource: `none: a HopSupSup model (${rule} reservoir) reports a task unknown when the recalled mask matches no stored task's`,
      tasks: model.manifest.tasks.map((t) => opened.taskInfo(t)),
      maskBankBytes: engine.reservoirBytes,
      backend,
      kernels: { name: 'hopfield', reason: 'neuron masks recalled from a Hopfield reservoir; no mask kernels' },
    };
    return { opened, info };
  }

  /**
   * A task's mask for this kind: the hidden layers' neuron bits one after another (2 × 2048 for the paper's
   * network), packed like a weight mask: neuron n is bit (n & 31) of word n >>> 5.
   */
  async addTask(t: TaskSpec, mask: Uint32Array): Promise<{ task: TaskInfo; maskBankBytes: number }> {
    const widths = this.model.manifest.architecture.hidden;
    const total = widths.reduce((a, b) => a + b, 0);
    if (mask.length !== Math.ceil(total / 32)) {
      throw invalid(`a HopSupSup task mask has ${total} neuron bits (${widths.join(' + ')}) in ${Math.ceil(total / 32)} 32-bit words, got ${mask.length} words`);
    }
    const bits = Uint8Array.from({ length: Math.ceil(total / 32) * 32 }, (_, n) => (mask[n >>> 5] >>> (n & 31)) & 1);
    if (bits.subarray(total).some((b) => b !== 0)) throw invalid(`the mask sets bits past the ${total} neurons`);
    let at = 0;
    const masks = widths.map((d) => bits.slice(at, (at += d)));
    const next = await addHopfieldTasks(this.dir, this.model, [{ id: t.id, name: t.name, masks, addedAt: t.addedAt }]);
    const entry = next.manifest.tasks[next.manifest.tasks.length - 1];
    this.engine.addTask(next.reservoirs, cuesOf(next, entry));
    this.model = next;
    return { task: this.taskInfo(entry), maskBankBytes: this.engine.reservoirBytes };
  }

  removeTask(id: string): never {
    if (!this.model.manifest.tasks.some((t) => t.id === id)) throw taskNotFound(id);
    throw new SupsupError(
      'failed_precondition',
      'a HopSupSup model cannot remove a task: its mask is superposed into the Hopfield reservoir with the others and is not kept, so it cannot be taken out again',
    );
  }

  private taskInfo(t: HopfieldTask): TaskInfo {
    const masks = this.engine.maskOf(t.id);
    const kept = masks.reduce((n, m) => n + m.reduce((a, b) => a + b, 0), 0);
    const total = masks.reduce((n, m) => n + m.length, 0);
    return { id: t.id, name: t.name, addedAt: t.addedAt, density: kept / total, transform: { kind: 'identity' } };
  }
}

function cuesOf(model: HopfieldModel, t: HopfieldTask): HopfieldTaskCue {
  return { id: t.id, cues: model.manifest.architecture.hidden.map((_, l) => cueOfTask(model.manifest, t, l)) };
}
