// `supsup serve` configuration: one table of settings, each a `--flag` with a `SUPSUP_*` environment
// variable of the same name (flag wins). Every value is checked before anything starts; a bad one stops
// the server with a message that names the flag and the variable.
import { parseArgs } from 'node:util';
import { DEFAULT_MAX_BATCH } from '../contract/classify.ts';
import { KERNEL_PREFERENCES } from '../platform/kernels.ts';
import { BACKEND_PREFERENCES } from '../platform/backend.ts';
import { DEFAULT_MODEL_DIRS, defaultModelDir } from '../runtime/default-model.ts';
import type { RuntimeOptions } from '../runtime/model-runtime.ts';
import { parseStoreUrl } from '../store/store-url.ts';

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
  shutdownTimeoutMs: number;
  /** On SIGTERM, how long to keep serving with readiness false before closing the listeners. */
  drainDelayMs: number;
}

type Kind = 'string' | 'token' | 'url' | 'port' | 'count' | 'ms' | 'bytes' | 'number';
interface Setting {
  key: keyof ServeConfig;
  flag: string;
  kind: Kind;
  help: string;
  default?: string;
  choices?: readonly string[];
  min?: number;
}

export const SETTINGS: Setting[] = [
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
  { key: 'maxQueue', flag: 'max-queue', kind: 'count', default: '256', min: 1, help: 'most requests waiting; past it 503 + Retry-After' },
  { key: 'maxWaitMs', flag: 'max-wait-ms', kind: 'ms', default: '0', min: 0, help: 'how long a request waits for others to merge with (0: merge only what is already queued)' },
  { key: 'bodyLimit', flag: 'body-limit', kind: 'bytes', default: '8mib', min: 1024, help: 'HTTP body / gRPC message limit (bytes; k, m, kib, mib suffixes)' },
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
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout-ms', kind: 'ms', default: '30000', min: 1, help: 'on SIGTERM, exit within this long' },
  {
    key: 'drainDelayMs',
    flag: 'drain-delay-ms',
    kind: 'ms',
    default: '0',
    min: 0,
    help: 'on SIGTERM, keep serving this long with readiness false before closing (time for load balancers to notice)',
  },
];

/** Shortest admin or API token accepted. */
export const MIN_TOKEN_LENGTH = 16;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function envName(flag: string): string {
  return `SUPSUP_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/** Parses argv and env into a checked config. Throws ConfigError naming the setting. */
export function parseServeConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServeConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(SETTINGS.map((s) => [s.flag, { type: 'string' as const }]));
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const config: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const fromFlag = values[s.flag] as string | undefined;
    const fromEnv = env[envName(s.flag)];
    const raw = fromFlag ?? (fromEnv === '' ? undefined : fromEnv) ?? s.default;
    if (raw === undefined) continue;
    const where = fromFlag !== undefined ? `--${s.flag}` : fromEnv ? envName(s.flag) : `--${s.flag} (default)`;
    config[s.key] = parseValue(s, raw, where);
  }
  if (config.store !== undefined) {
    try {
      parseStoreUrl(config.store as string);
    } catch (e) {
      throw new ConfigError(`--store / SUPSUP_STORE: ${(e as Error).message}`);
    }
    if (config.model === undefined) throw new ConfigError('--store needs --model: the directory where this replica keeps its copy of the task set');
  }
  config.model ??= requireDefaultModel();
  const c = config as unknown as ServeConfig;
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

function parseValue(s: Setting, raw: string, where: string): unknown {
  const fail = (why: string): never => {
    throw new ConfigError(`${where}: ${why}, got ${JSON.stringify(raw)}`);
  };
  if (s.kind === 'string') {
    if (raw.length === 0) fail('must not be empty');
    if (s.choices && !s.choices.includes(raw)) fail(`must be one of ${s.choices.join(', ')}`);
    return raw;
  }
  if (s.kind === 'token') {
    // The message names the setting but never echoes the value: it is a secret.
    if (raw.length < MIN_TOKEN_LENGTH || /\s/.test(raw)) {
      throw new ConfigError(`--${s.flag} / ${envName(s.flag)} must be at least ${MIN_TOKEN_LENGTH} characters with no whitespace`);
    }
    return raw;
  }
  if (s.kind === 'url') {
    let url: URL | undefined;
    try {
      url = new URL(raw);
    } catch {
      fail('must be an http:// or https:// URL');
    }
    if (url!.protocol !== 'http:' && url!.protocol !== 'https:') fail('must be an http:// or https:// URL');
    return raw;
  }
  if (s.kind === 'number') {
    const x = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isFinite(x)) fail('must be a decimal number like 0.125');
    if (s.min !== undefined && x < s.min) fail(`must be at least ${s.min}`);
    return x;
  }
  const n = s.kind === 'bytes' ? parseBytes(raw) : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) fail(s.kind === 'bytes' ? 'must be a byte count like 8388608, 512kib or 8mib' : 'must be a whole number');
  if (s.kind === 'port' && n > 65535) fail('must be a port number from 0 to 65535');
  if (s.min !== undefined && n < s.min) fail(`must be at least ${s.min}`);
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2 };

function parseBytes(raw: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
  return m && unit !== undefined ? Number(m[1]) * unit : NaN;
}

export function serveUsage(): string {
  const rows = SETTINGS.map((s) => {
    const def = s.default !== undefined ? ` [default ${s.default}]` : '';
    return `  --${s.flag.padEnd(20)} ${envName(s.flag).padEnd(28)} ${s.help}${def}`;
  });
  return `usage: supsup serve [options]\n\noptions (flag, environment variable, meaning):\n${rows.join('\n')}`;
}
