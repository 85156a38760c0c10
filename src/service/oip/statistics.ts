// Triton's statistics extension (docs/protocol/extension_statistics.md): per model (and version), since the
// server started, what its inference calls (OIP REST and gRPC) cost: successes and failures with their whole
// duration, the time waiting in the batching queue, decoding the inputs (compute_input), the forward pass
// (compute_infer) and encoding the outputs (compute_output), each a count and cumulative nanoseconds; examples
// served (inference_count); passes run (execution_count: calls merged into one pass count once); and the same
// per pass batch size. There is no response cache, so cache_hit and cache_miss stay at zero.
import { performance } from 'node:perf_hooks';
import type { Prediction } from '../../contract/classify.ts';
import type { PassTiming } from '../../runtime/batcher.ts';
import type { ServiceContext } from '../context.ts';
import type { OipInferPlan } from './mapping.ts';
import { OIP_VERSION, type OipModel } from './models.ts';

export interface DurationStat {
  count: number;
  ns: number;
}

interface BatchStat {
  batch_size: number;
  compute_input: DurationStat;
  compute_infer: DurationStat;
  compute_output: DurationStat;
}

/** One model's statistics, with Triton's field names ($model_stat; gRPC ModelStatistics). */
export interface ModelStat {
  name: string;
  version: string;
  last_inference: number;
  inference_count: number;
  execution_count: number;
  inference_stats: Record<'success' | 'fail' | 'queue' | 'compute_input' | 'compute_infer' | 'compute_output' | 'cache_hit' | 'cache_miss', DurationStat>;
  batch_stats: BatchStat[];
}

/** How one successful call went, in milliseconds, and the pass that served it. */
export interface CallTimes {
  examples: number;
  totalMs: number;
  inputMs: number;
  outputMs: number;
  pass: PassTiming;
}

const zero = (): DurationStat => ({ count: 0, ns: 0 });
const add = (d: DurationStat, ms: number) => {
  d.count++;
  d.ns += Math.round(ms * 1e6);
};

function emptyStat(name: string): ModelStat {
  const inference_stats = { success: zero(), fail: zero(), queue: zero(), compute_input: zero(), compute_infer: zero(), compute_output: zero(), cache_hit: zero(), cache_miss: zero() };
  return { name, version: OIP_VERSION, last_inference: 0, inference_count: 0, execution_count: 0, inference_stats, batch_stats: [] };
}

export class ModelStatistics {
  private readonly stats = new Map<string, ModelStat>();
  /** The last pass counted for each model, so that calls merged into one pass count one execution. */
  private readonly lastPass = new Map<string, number>();

  success(model: string, t: CallTimes, now = Date.now()): void {
    const s = this.of(model);
    s.last_inference = now;
    s.inference_count += t.examples;
    add(s.inference_stats.success, t.totalMs);
    add(s.inference_stats.queue, t.pass.queueMs);
    add(s.inference_stats.compute_input, t.inputMs);
    add(s.inference_stats.compute_infer, t.pass.computeMs);
    add(s.inference_stats.compute_output, t.outputMs);
    if (this.lastPass.get(model) === t.pass.pass) return;
    this.lastPass.set(model, t.pass.pass);
    s.execution_count++;
    let b = s.batch_stats.find((x) => x.batch_size === t.pass.examples);
    if (!b) {
      b = { batch_size: t.pass.examples, compute_input: zero(), compute_infer: zero(), compute_output: zero() };
      s.batch_stats.push(b);
      s.batch_stats.sort((x, y) => x.batch_size - y.batch_size);
    }
    add(b.compute_input, t.inputMs);
    add(b.compute_infer, t.pass.computeMs);
    add(b.compute_output, t.outputMs);
  }

  failure(model: string, totalMs: number): void {
    add(this.of(model).inference_stats.fail, totalMs);
  }

  /** The statistics of each model named, zeros for one that has not been called. */
  report(models: readonly string[]): { model_stats: ModelStat[] } {
    return { model_stats: models.map((m) => structuredClone(this.stats.get(m) ?? emptyStat(m))) };
  }

  private of(model: string): ModelStat {
    let s = this.stats.get(model);
    if (!s) this.stats.set(model, (s = emptyStat(model)));
    return s;
  }
}

/**
 * One OIP inference, REST or gRPC, timed into the model's statistics: `plan` decodes and checks the request,
 * `encode` turns the predictions into the protocol's answer. A call that fails anywhere counts as a failure.
 */
export async function inferRecorded<T>(ctx: ServiceContext, model: OipModel, plan: () => OipInferPlan, encode: (p: Prediction[], plan: OipInferPlan) => T): Promise<T> {
  const stats = ctx.metrics.modelStatistics;
  const t0 = performance.now();
  try {
    const planned = plan();
    const t1 = performance.now();
    const pass = {} as PassTiming;
    const predictions = await ctx.runtime.classify(planned.call, planned.timeoutMs, pass);
    const t2 = performance.now();
    const answer = encode(predictions, planned);
    const t3 = performance.now();
    stats.success(model.name, { examples: planned.call.batch, totalMs: t3 - t0, inputMs: t1 - t0, outputMs: t3 - t2, pass });
    return answer;
  } catch (e) {
    stats.failure(model.name, performance.now() - t0);
    throw e;
  }
}
