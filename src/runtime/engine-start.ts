// Starting the engine worker and asking it to open a model, apart from the runtime that will own it
// (model-runtime.ts): `supsup serve` starts the worker first, with little loaded, so the worker loads the model
// while the main thread loads the runtime and the servers' modules.
import { EngineClient } from './engine-client.ts';
import type { RuntimeOptions } from './model-runtime.ts';
import type { OpenedModel } from './worker-protocol.ts';

export type OpenOptions = Pick<RuntimeOptions, 'dir' | 'backend' | 'kernels' | 'maxBatch' | 'epsilon' | 'rerank'>;

/** The replies to `open` and to the warm-up the worker runs right behind it (readiness waits for both). */
export interface Opening {
  model: Promise<OpenedModel>;
  warmUp: Promise<void>;
}

/** An engine worker started, and already opening the model directory, before the runtime that will own it exists. */
export interface StartedEngine {
  readonly client: EngineClient;
  /**
   * The open and warm-up requests, handed over once, to the adopting runtime. Not a field: open's reply holds the
   * shared bank and every task, and would stay reachable for as long as this object is (its starter may keep it to
   * the end), pinning the bank's old buffer after the bank grows (docs/benchmarks.md, stop 22).
   */
  takeOpening(): Opening | undefined;
  /** Told when the worker exits; the adopting runtime sets it. */
  onExit: (code: number) => void;
}

/** Starts an engine worker and has it open the model directory now; a runtime created with it adopts both. */
export function startEngine(options: OpenOptions): StartedEngine {
  const client = new EngineClient((code) => started.onExit(code));
  let opening: Opening | undefined = open(client, options);
  const started: StartedEngine = {
    client,
    takeOpening() {
      const taken = opening;
      opening = undefined;
      return taken;
    },
    onExit: () => undefined,
  };
  return started;
}

/** Asks the worker to open the model directory and warm up: its passes run while this thread reads open's reply. */
export function open(client: EngineClient, { dir, backend, kernels, maxBatch, epsilon, rerank }: OpenOptions): Opening {
  const opening = { model: client.request({ op: 'open', dir, backend, kernels, maxBatch, epsilon, rerank }), warmUp: client.request({ op: 'warmUp' }) };
  // Their failures are load()'s to report, whenever it awaits them (a failed open fails the warm-up too).
  opening.model.catch(() => undefined);
  opening.warmUp.catch(() => undefined);
  return opening;
}
