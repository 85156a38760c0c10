// Optional OpenTelemetry traces: one server span per served call (REST request or gRPC call), exported over
// OTLP/HTTP (JSON) to --otel-endpoint, child of the caller's span when it sent a W3C `traceparent`. Off (no
// provider, no cost beyond a branch) when no endpoint is configured. The provider is this server's own, not
// registered globally, so nothing else in the process is traced by accident. The SDK is loaded only when an
// endpoint is configured: its modules cost ~0.3-0.4 s of CPU at start-up, on the path to ready.
import type { Attributes, Context, Span, TextMapGetter, Tracer } from '@opentelemetry/api';

export interface CallSpan {
  /** The trace id (32 hex digits), for the log line; empty when tracing is off. */
  readonly traceId: string;
  setAttributes(attributes: Attributes): void;
  /** Ends the span; `error` marks it failed with that description. */
  end(error?: string): void;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Starts a server span; `header(name)` reads the caller's headers or metadata (for `traceparent`). */
  startCall(name: string, header: (name: string) => string | undefined, attributes: Attributes): CallSpan;
  /** Exports what is pending and stops. */
  shutdown(): Promise<void>;
}

const OFF_SPAN: CallSpan = { traceId: '', setAttributes: () => undefined, end: () => undefined };

export async function createTracing(endpoint: string | undefined, serviceVersion: string): Promise<Tracing> {
  if (!endpoint) return { enabled: false, startCall: () => OFF_SPAN, shutdown: async () => undefined };
  const [{ ROOT_CONTEXT, SpanKind, SpanStatusCode }, { W3CTraceContextPropagator }, { OTLPTraceExporter }, { resourceFromAttributes }, { BatchSpanProcessor, TracerProvider }] =
    await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/core'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/sdk-trace'),
    ]);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'supsup', 'service.version': serviceVersion }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: endpoint }) })],
  });
  const tracer: Tracer = provider.getTracer('supsup', serviceVersion);
  const propagator = new W3CTraceContextPropagator();
  return {
    enabled: true,
    startCall(name, header, attributes) {
      const getter: TextMapGetter<unknown> = { keys: () => ['traceparent', 'tracestate'], get: (_c, key) => header(key) };
      const parent: Context = propagator.extract(ROOT_CONTEXT, undefined, getter);
      const span: Span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
      return {
        traceId: span.spanContext().traceId,
        setAttributes: (a) => void span.setAttributes(a),
        end(error) {
          if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
          span.end();
        },
      };
    },
    shutdown: () => provider.shutdown(),
  };
}
