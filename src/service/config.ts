// `supsup serve` configuration: one table of settings, each a `--flag` with a `SUPSUP_*` environment
// variable of the same name (flag wins). Every value is checked before anything starts; a bad one stops
// the server with a message that names the flag and the variable.
import { DEFAULT_MAX_BATCH, DEFAULT_RERANK } from '../contract/classify.ts';
import { BACKEND_PREFERENCES, KERNEL_PREFERENCES } from '../platform/preferences.ts';
import { DEFAULT_MODEL_DIRS, defaultModelDir } from '../runtime/default-model.ts';
import type { RuntimeOptions } from '../runtime/model-runtime.ts';
import { parseStoreUrl } from '../store/store-url.ts';
import { ConfigError, parseSettings, refuse, type Setting, usage } from '../platform/settings.ts';
import { TASK_ID_PATTERN } from '../contract/task.ts';
import { LOG_FORMATS, type LogFormat } from './log-format.ts';

export { ConfigError, envName } from '../platform/settings.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The runtime's options (backend, kernels, batching, ε: see RuntimeOptions), and the servers' own. */
export interface ServeConfig extends Omit<RuntimeOptions, 'dir'> {
  /** The model directory (RuntimeOptions.dir). */
  model: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  /** Bytes: HTTP body limit and gRPC message limit. */
  bodyLimit: number;
  /** The Open Inference Protocol's name for the model (each task is also served under its own id). */
  modelName: string;
  /** Per-request deadline, from arrival to answer. */
  timeoutMs: number;
  adminToken?: string;
  /** Bearer token required on the serving calls (health, metrics and docs stay open); unset: open. */
  apiToken?: string;
  /** Shared task store (postgres://…?model=name); unset: the model directory alone is the task set. */
  store?: string;
  /** OTLP/HTTP traces URL (e.g. http://collector:4318/v1/traces); unset: no tracing. */
  otelEndpoint?: string;
  logLevel: LogLevel;
  /** JSON lines, or one line for a person (log-format.ts); unset: auto. */
  logFormat?: LogFormat;
  shutdownTimeoutMs: number;
  /** On SIGTERM, how long to keep serving with readiness false before closing the listeners. */
  drainDelayMs: number;
}

export const SETTINGS = [
  { key: 'model', flag: 'model', kind: 'string', help: `model directory (default: the first of ${DEFAULT_MODEL_DIRS.join(', ')} that exists)` },
  { key: 'host', flag: 'host', kind: 'string', default: '0.0.0.0', help: 'address both servers listen on' },
  { key: 'httpPort', flag: 'http-port', kind: 'port', default: '8080', help: 'REST port (0: pick a free one)' },
  { key: 'grpcPort', flag: 'grpc-port', kind: 'port', default: '50051', help: 'gRPC port (0: pick a free one)' },
  { key: 'backend', flag: 'backend', kind: 'string', default: 'auto', choices: BACKEND_PREFERENCES, help: 'TensorFlow.js backend' },
  { key: 'kernels', flag: 'kernels', kind: 'string', default: 'auto', choices: KERNEL_PREFERENCES, help: 'mask kernels' },
  { key: 'maxBatch', flag: 'max-batch', kind: 'count', default: String(DEFAULT_MAX_BATCH), min: 1, help: 'most examples per request and per merged forward pass' },
  {
    key: 'epsilon',
    flag: 'epsilon',
    kind: 'number',
    min: 0,
    help: "unknown-task threshold ε: flagged unknown when k · max ν < 1 + ε (default: the model's own, from its manifest, else the paper's 1/8)",
  },
  {
    key: 'rerank',
    flag: 'rerank',
    kind: 'count',
    default: String(DEFAULT_RERANK),
    min: 1,
    help: "a task inferred one-shot from one example (decideFrom first or each, or a batch of one): the one-shot gradient's top N masks each run exactly on the example and the best fit wins (1: the gradient's top-1, the paper's rule)",
  },
  { key: 'maxQueue', flag: 'max-queue', kind: 'count', default: '256', min: 1, help: 'most requests waiting; past it 503 + Retry-After' },
  {
    key: 'admissionWaitMs',
    flag: 'admission-wait-ms',
    kind: 'ms',
    default: '5000',
    min: 0,
    help: 'when the queue is full, how long a new request waits for a place, its body left unread in the socket (no CPU spent on it), before 503 + Retry-After (0: refuse at once)',
  },
  { key: 'maxWaitMs', flag: 'max-wait-ms', kind: 'ms', default: '0', min: 0, help: 'how long a request waits for others to merge with (0: merge only what is already queued)' },
  {
    key: 'maxEngineRestarts',
    flag: 'max-engine-restarts',
    kind: 'count',
    default: '5',
    min: 0,
    help: 'when the engine worker dies: consecutive failed restarts before /healthz and gRPC liveness fail, so the orchestrator replaces the process (0: at once)',
  },
  {
    key: 'engineRestartDelayMs',
    flag: 'engine-restart-delay-ms',
    kind: 'ms',
    default: '1000',
    min: 0,
    help: 'wait before restarting a dead engine worker; doubled after each failed restart, at most 30 s',
  },
  { key: 'bodyLimit', flag: 'body-limit', kind: 'bytes', default: '8mib', min: 1024, help: 'HTTP body / gRPC message limit (bytes; k, m, kib, mib suffixes)' },
  {
    key: 'modelName',
    flag: 'model-name',
    kind: 'string',
    default: 'supsup',
    help: 'the model\'s name in the Open Inference Protocol (REST /v2/models/NAME, gRPC model_name); each task is also a model of its own id',
  },
  { key: 'timeoutMs', flag: 'timeout-ms', kind: 'ms', default: '30000', min: 1, help: 'per-request deadline' },
  { key: 'adminToken', flag: 'admin-token', kind: 'token', help: 'bearer token for PUT/DELETE /tasks (unset: task management is disabled)' },
  {
    key: 'apiToken',
    flag: 'api-token',
    kind: 'token',
    help: 'bearer token for classification and model/task reads, REST and gRPC; health, metrics and docs stay open (unset: open; the admin token is accepted too)',
  },
  {
    key: 'otelEndpoint',
    flag: 'otel-endpoint',
    kind: 'url',
    help: 'OpenTelemetry: export one span per REST request and gRPC call over OTLP/HTTP to this URL, e.g. http://collector:4318/v1/traces (unset: off)',
  },
  {
    key: 'store',
    flag: 'store',
    kind: 'string',
    help: 'replicas: shared task store, postgres://user@host:port/db?model=name; --model is then this replica\'s local copy, kept in step with the store (unset: the model directory alone)',
  },
  { key: 'logLevel', flag: 'log-level', kind: 'string', default: 'info', choices: LOG_LEVELS, help: 'log level' },
  {
    key: 'logFormat',
    flag: 'log-format',
    kind: 'string',
    default: 'auto',
    choices: LOG_FORMATS,
    help: 'json: one JSON object per line; pretty: one short line for a person; auto: pretty when stdout is a terminal, else json',
  },
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout-ms', kind: 'ms', default: '30000', min: 1, help: 'on SIGTERM, exit within this long' },
  {
    key: 'drainDelayMs',
    flag: 'drain-delay-ms',
    kind: 'ms',
    default: '0',
    min: 0,
    help: 'on SIGTERM, keep serving this long with readiness false before closing (time for load balancers to notice)',
  },
] as const satisfies readonly Setting[];

const USAGE_HEAD = 'usage: supsup serve [options]';

/** Parses argv and env into a checked config. Throws ConfigError naming the setting. */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const { values } = parseSettings(SETTINGS, argv, serveUsage(), env);
  if (values.store !== undefined) {
    try {
      parseStoreUrl(values.store);
    } catch (e) {
      throw new ConfigError(`--store / SUPSUP_STORE: ${(e as Error).message}`);
    }
    if (values.model === undefined) throw new ConfigError('--store needs --model: the directory where this replica keeps its copy of the task set');
  }
  if (!TASK_ID_PATTERN.test(values.modelName)) throw refuse('--model-name / SUPSUP_MODEL_NAME', `must match ${TASK_ID_PATTERN}, like a task id`, values.modelName);
  const c: ServeConfig = { ...values, model: values.model ?? requireDefaultModel() };
  if (c.httpPort !== 0 && c.httpPort === c.grpcPort) {
    throw new ConfigError(`--http-port and --grpc-port are both ${c.httpPort}: they must differ`);
  }
  if (c.drainDelayMs >= c.shutdownTimeoutMs) {
    throw new ConfigError(`--drain-delay-ms (${c.drainDelayMs}) must be shorter than --shutdown-timeout-ms (${c.shutdownTimeoutMs})`);
  }
  return c;
}

function requireDefaultModel(): string {
  const found = defaultModelDir();
  if (!found) throw new ConfigError(`no --model given and none of the default models (${DEFAULT_MODEL_DIRS.join(', ')}) exists`);
  return found;
}

export function serveUsage(): string {
  return usage(USAGE_HEAD, SETTINGS, { env: true });
}
