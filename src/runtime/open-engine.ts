// Opens a model directory into a ready Engine: picks the tfjs backend and the mask kernels, loads and
// checks the files, and puts every stored task in the bank. The one place that wires these together
// (the serving worker, `classify`, `eval` and `bench` all call it).
import type { BackendPreference, KernelPreference } from '../platform/preferences.ts';
import { Engine } from '../core/engine.ts';
import { selectKernels } from '../platform/kernels.ts';
import type { Manifest } from '../model/manifest.ts';
import { loadModelInto } from '../model/model-store.ts';
import { cudaKernelsFor } from '../platform/cuda/cuda-backend.ts';
import { type BackendChoice, selectBackend } from '../platform/backend.ts';

export interface OpenedEngine {
  engine: Engine;
  manifest: Manifest;
  /** Where the unknown-task threshold ε came from, for the log. */
  epsilonSource: string;
  backend: BackendChoice;
  kernels: { name: string; reason: string };
}

export interface OpenOptions {
  backend?: BackendPreference;
  kernels?: KernelPreference;
  maxBatch?: number;
  /** Overrides the model's own ε (manifest `unknownTask`); without either, the paper's 1/8. */
  epsilon?: number;
  /** Masks re-ranked by exact forwards from one example (InferenceOptions.rerank); unset: DEFAULT_RERANK. */
  rerank?: number;
  /** An embedded tfjs backend starts at core/tfjs.ts's startTfjs, not while the model opens (selectBackend's defer). */
  deferTfjs?: boolean;
}

export async function openEngine(dir: string, options: OpenOptions = {}): Promise<OpenedEngine> {
  const backend = await selectBackend(options.backend ?? 'auto', { defer: options.deferTfjs });
  const kernels = cudaKernelsFor(backend, options.kernels ?? 'auto') ?? selectKernels(options.kernels ?? 'auto');
  // The masks go straight from the file into the engine's bank as they are verified: one copy in memory, not three.
  const newEngine = (m: Manifest) =>
    new Engine({
      architecture: m.architecture,
      seed: m.seed,
      normalization: m.normalization,
      kernels: kernels.kernels,
      expectedTasks: m.tasks.length,
      maxBatch: options.maxBatch,
      epsilon: options.epsilon ?? m.unknownTask?.epsilon,
      oneExample: m.unknownTask?.oneExample,
      rerank: options.rerank,
    });
  // The addon counts every mask's set bits in one pass over the bank once all are in (the load's density check); the
  // TypeScript kernels' pass would be slower than counting each mask as it comes, and CUDA's runs on its device copy.
  const countInBank = kernels.kernels.name.startsWith('native-');
  let engine: Engine | undefined;
  let manifest: Manifest;
  try {
    manifest = await loadModelInto(
      dir,
      (m) => {
        engine?.dispose();
        engine = newEngine(m);
      },
      (id, mask) => engine!.addTask(id, mask),
      countInBank ? () => engine!.setBitCounts() : undefined,
    );
  } catch (e) {
    engine?.dispose();
    throw e;
  }
  const one = manifest.unknownTask?.oneExample;
  const epsilonSource =
    (options.epsilon !== undefined ? 'set for this run' : manifest.unknownTask ? `the model's own: ${manifest.unknownTask.calibration}` : "the paper's 1/8") +
    (one ? `; from one example: unknown when the best ${one.score} fit of the top ${one.candidates} masks < ${one.threshold} (${one.calibration})` : '');
  return { engine: engine!, manifest, epsilonSource, backend, kernels: { name: engine!.kernelsName, reason: kernels.reason } };
}
