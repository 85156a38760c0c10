// The service's Prometheus metrics, on a registry of its own (so tests and several servers in one process
// never collide). Names follow Prometheus conventions: base units (seconds, bytes), `_total` on counters,
// histograms rather than summaries so they aggregate across replicas.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RuntimeObserver } from '../runtime/model-runtime.ts';
import { loadNativeAddon } from '../platform/native-addon.ts';
import { PACKAGE_VERSION, sourceCommit } from './version.ts';
import { ModelStatistics } from './oip/statistics.ts';

/** Live values the gauges read at scrape time. */
export interface GaugeSources {
  tasksLoaded(): number;
  maskBankBytes(): number;
  queueDepth(): number;
  tensors(): number;
  /** 1 while /readyz answers 200, else 0. */
  ready(): number;
}

// From 100 µs: a given-task answer on a small model takes well under a millisecond.
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'protocol' | 'route' | 'outcome'>;
  readonly requestDuration: Histogram<'protocol' | 'route'>;
  readonly queueWait: Histogram;
  readonly inferenceDuration: Histogram<'mode'>;
  readonly batchSize: Histogram;
  readonly taskInference: Counter<'outcome'>;
  readonly engineRestarts: Counter;
  /** Per-model statistics of OIP inference calls, in Triton's form (GET /v2/models/stats, gRPC ModelStatistics). */
  readonly modelStatistics = new ModelStatistics();

  constructor(sources: GaugeSources) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'supsup_requests_total',
      help: 'Requests answered, by protocol, route (or RPC) and outcome ("ok" or the error code).',
      labelNames: ['protocol', 'route', 'outcome'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'supsup_request_duration_seconds',
      help: 'Time from a request arriving to its answer being sent.',
      labelNames: ['protocol', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: 'supsup_queue_wait_seconds',
      help: 'Time a classification request waited in the batching queue before its forward pass started.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.inferenceDuration = new Histogram({
      name: 'supsup_inference_duration_seconds',
      help: 'Engine compute time of one (possibly merged) forward pass, measured in the engine worker.',
      labelNames: ['mode'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.batchSize = new Histogram({
      name: 'supsup_batch_size',
      help: 'Examples per engine pass, after dynamic batching merged requests.',
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.taskInference = new Counter({
      name: 'supsup_task_inference_total',
      help: 'Examples classified, by how their task was chosen: given, inferred, or inferred and flagged unknown.',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['given', 'inferred', 'unknown']) this.taskInference.inc({ outcome }, 0);
    this.engineRestarts = new Counter({
      name: 'supsup_engine_restarts_total',
      help: 'Engine workers started in place of one that died or failed to load the model.',
      registers,
    });
    gauge('supsup_tasks_loaded', 'Tasks (masks) in the model being served.', sources.tasksLoaded, registers);
    gauge('supsup_mask_bank_bytes', 'Bytes of the packed mask bank.', sources.maskBankBytes, registers);
    gauge('supsup_queue_depth', 'Classification requests waiting for the engine.', sources.queueDepth, registers);
    gauge('supsup_ready', 'Whether the server is ready to classify (1) or not (0: loading, restarting its engine worker, given up, or draining), as /readyz says.', sources.ready, registers);
    gauge('supsup_tensors', 'Live TensorFlow.js tensors in the engine worker (steady under load when nothing leaks).', sources.tensors, registers);
    buildInfo(registers);
    collectDefaultMetrics({ register: this.registry });
    // prom-client's totals of the per-type gauges nodejs_active_{handles,requests,resources} are gauges named
    // *_total, which `promtool check metrics` rejects ("non-counter metrics should not have _total suffix").
    // The per-type gauges stay; sum() over them gives the same totals.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /** What the runtime reports: queue waits, pass sizes and compute times, and how each example's task was chosen. */
  runtimeObserver(): RuntimeObserver {
    return {
      queueWait: (seconds) => this.queueWait.observe(seconds),
      batch: (examples) => this.batchSize.observe(examples),
      inference: (seconds, mode) => this.inferenceDuration.observe({ mode }, seconds),
      predictions: (predictions) => {
        let given = 0;
        let inferred = 0;
        let unknown = 0;
        for (const p of predictions) {
          if (!p.task.inferred) given++;
          else if (p.task.unknown) unknown++;
          else inferred++;
        }
        if (given) this.taskInference.inc({ outcome: 'given' }, given);
        if (inferred) this.taskInference.inc({ outcome: 'inferred' }, inferred);
        if (unknown) this.taskInference.inc({ outcome: 'unknown' }, unknown);
      },
      engineRestart: () => this.engineRestarts.inc(),
    };
  }
}

/**
 * supsup_build_info = 1, labelled with what was built and how it runs here: the package version, Node's version,
 * the source commit (when known) and the SIMD path the native kernels take on this CPU ("none" without the addon).
 */
function buildInfo(registers: Registry[]): void {
  // Labelled on the first scrape: finding the commit runs `git` where SUPSUP_COMMIT is unset (~10-15 ms of start-up).
  let labelled = false;
  new Gauge({
    name: 'supsup_build_info',
    help: 'Always 1; the labels say which build this is.',
    labelNames: ['version', 'node', 'simd', 'commit'],
    registers,
    collect() {
      if (labelled) return;
      labelled = true;
      const commit = sourceCommit();
      const simd = loadNativeAddon().addon?.simdLevel() ?? 'none';
      this.set({ version: PACKAGE_VERSION, node: process.version, simd, ...(commit && { commit }) }, 1);
    },
  });
}

function gauge(name: string, help: string, read: () => number, registers: Registry[]): Gauge {
  return new Gauge({
    name,
    help,
    registers,
    collect() {
      this.set(read());
    },
  });
}
