/**
 * What `supsup serve` loads only when it is configured: the OpenTelemetry SDK (--otel-endpoint) and the task store's
 * client, pg (--store). Their modules cost ~0.3-0.4 s of CPU on the path to ready. This file runs in a process of
 * its own (node --test), so what it sees loaded is what these modules load; both packages are CommonJS, so what
 * is loaded sits in require's cache.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import '../src/service/server.ts';
import { createTracing } from '../src/service/tracing.ts';

const loaded = (pattern: RegExp) => Object.keys(createRequire(import.meta.url).cache).filter((f) => pattern.test(f));
const OTEL_SDK = /node_modules\/@opentelemetry\/(sdk-trace|exporter-trace-otlp-http|resources|core)\//;

describe('modules loaded only when configured', () => {
  it('the server modules load neither the OpenTelemetry SDK nor pg', () => {
    assert.deepEqual(loaded(OTEL_SDK), []);
    assert.deepEqual(loaded(/node_modules\/pg\//), []);
  });

  it('tracing off loads nothing; an endpoint loads the SDK', async () => {
    const off = await createTracing(undefined, '0.0.0');
    assert.equal(off.enabled, false);
    assert.equal(off.startCall('x', () => undefined, {}).traceId, '');
    assert.deepEqual(loaded(OTEL_SDK), []);
    const on = await createTracing('http://127.0.0.1:9/v1/traces', '0.0.0');
    assert.equal(on.enabled, true);
    const span = on.startCall('x', () => undefined, {});
    assert.match(span.traceId, /^[0-9a-f]{32}$/);
    assert.notDeepEqual(loaded(OTEL_SDK), []);
    await on.shutdown();
  });
});
