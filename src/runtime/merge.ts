// Which calls may share one forward pass, and how. Calls with the same given task are independent example
// by example, and so are inferred-task calls that decide per example with the same options. Calls that infer
// their task one-shot from their first example or their whole batch merge as segments: each keeps a decision
// of its own, made from its own examples (one score row per call, all rows in one pass over the bank).
// Binary search from a batch still runs alone (its rounds depend on the data).
import type { ClassifyCall, Prediction } from '../contract/classify.ts';

export function mergeKey(call: ClassifyCall): string | null {
  if (call.task !== undefined) return `task:${call.task}`;
  const o = call.inference;
  if (o.decideFrom === 'each') return `each:${o.method}:${o.objective}:${o.epsilon}:${o.rerank}`;
  if (o.method === 'one-shot') return `segments:${o.decideFrom}:${o.objective}:${o.epsilon}:${o.rerank}`;
  return null;
}

/** One call holding every example of `calls` (same merge key), in order; topK is the largest asked. */
export function mergeCalls(calls: ClassifyCall[]): ClassifyCall {
  if (calls.length === 1) return calls[0];
  const batch = calls.reduce((n, c) => n + c.batch, 0);
  const inputs = new Float32Array(calls.reduce((n, c) => n + c.inputs.length, 0));
  let at = 0;
  for (const c of calls) {
    inputs.set(c.inputs, at);
    at += c.inputs.length;
  }
  const topK = Math.max(...calls.map((c) => c.topK));
  const perCall = calls[0].task === undefined && calls[0].inference.decideFrom !== 'each';
  return { ...calls[0], inputs, batch, topK, ...(perCall ? { segments: calls.flatMap((c) => c.segments ?? [c.batch]) } : {}) };
}

/** Splits a merged pass's predictions back per call, trimming topK to what each call asked. */
export function splitPredictions(predictions: Prediction[], calls: ClassifyCall[]): Prediction[][] {
  if (calls.length === 1) return [predictions];
  let at = 0;
  return calls.map((c) => {
    const part = predictions.slice(at, at + c.batch);
    at += c.batch;
    return part.map((p) => {
      if (!p.topK || p.topK.length === c.topK) return p;
      const { topK, ...rest } = p;
      return c.topK > 0 ? { ...rest, topK: topK.slice(0, c.topK) } : rest;
    });
  });
}
