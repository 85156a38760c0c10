/**
 * Helpers for the service tests: tiny random-mask models in temp dirs, an in-process server on 127.0.0.1
 * with ephemeral ports, a small HTTP client, and the engine built directly from a model directory the way
 * the engine worker builds it (to check that the servers answer exactly what the engine answers).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Architecture } from '../../src/core/architecture.ts';
import { Engine } from '../../src/core/engine.ts';
import { typescriptKernels } from '../../src/core/kernels/typescript-kernels.ts';
import { Xoshiro128 } from '../../src/core/prng.ts';
import { loadModel } from '../../src/model/model-store.ts';
import { writeRandomModel } from '../../src/model/random-model.ts';
import { selectBackend } from '../../src/platform/backend.ts';
import type { ServeConfig } from '../../src/service/config.ts';
import { type RunningService, startService } from '../../src/service/server.ts';

/** P = 784·24 + 24·15 = 19,176: not a multiple of 32, so masks have padding bits. */
export const TINY: Architecture = { inputSize: 784, hidden: [24], outputs: 15, classes: 10 };
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export async function tempDir(prefix = 'supsup-service-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A model dir with `tasks` random masks (ids random-0 …) of a tiny LeNet-like MLP. */
export async function tinyModel(parent: string, tasks = 4, name = 'model'): Promise<string> {
  const dir = join(parent, name);
  await writeRandomModel(dir, { architecture: TINY, seed: 3, tasks, density: 0.5 });
  return dir;
}

export function testConfig(model: string, overrides: Partial<ServeConfig> = {}): ServeConfig {
  return {
    model,
    host: '127.0.0.1',
    httpPort: 0,
    grpcPort: 0,
    backend: 'wasm',
    kernels: 'typescript',
    maxBatch: 256,
    epsilon: 0.125,
    maxQueue: 64,
    maxWaitMs: 0,
    admissionWaitMs: 0,
    maxEngineRestarts: 5,
    engineRestartDelayMs: 1000,
    bodyLimit: 4 * 1024 * 1024,
    timeoutMs: 30_000,
    modelName: 'supsup',
    logLevel: 'silent',
    shutdownTimeoutMs: 5_000,
    drainDelayMs: 0,
    ...overrides,
  };
}

export interface TestService extends RunningService {
  url: string;
  close(): Promise<void>;
}

export async function startTestService(config: ServeConfig): Promise<TestService> {
  const service = await startService(config);
  return { ...service, url: `http://127.0.0.1:${service.httpPort}`, close: async () => void (await service.stop(5_000)) };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
  ms: number;
}

export async function http(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const start = performance.now();
  const res = await fetch(url, init);
  const text = await res.text();
  const ms = performance.now() - start;
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed, ms };
}

/** The engine for `dir`, built as the engine worker builds it (same kernels, task order, limits). */
export async function directEngine(dir: string, maxBatch = 256): Promise<Engine> {
  await selectBackend('wasm');
  const model = await loadModel(dir);
  const { architecture, seed, normalization } = model.manifest;
  const engine = new Engine({ architecture, seed, normalization, kernels: typescriptKernels, expectedTasks: model.manifest.tasks.length, maxBatch });
  for (const t of model.manifest.tasks) engine.addTask(t.id, model.masks.get(t.id)!);
  return engine;
}

/** `n` examples of `size` values in [0, 1], as multiples of 1/255 (so the uint8 form carries them exactly). */
export function randomExamples(n: number, size: number, seed: number): { rows: number[][]; flat: Float32Array; bytes: Uint8Array } {
  const rng = new Xoshiro128(seed);
  const bytes = Uint8Array.from({ length: n * size }, () => rng.nextUint32() & 0xff);
  const flat = Float32Array.from(bytes, (b) => b / 255);
  const rows = Array.from({ length: n }, (_, i) => Array.from(flat.subarray(i * size, (i + 1) * size)));
  return { rows, flat, bytes };
}

export function float32Base64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

export function maskBase64(mask: Uint32Array): string {
  return Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength).toString('base64');
}

export interface ServeProcess {
  child: import('node:child_process').ChildProcess;
  httpPort: number;
  grpcPort: number;
  url: string;
  /** Every JSON log line so far. */
  logs: any[];
  exited: Promise<{ code: number | null; at: number }>;
}

const BIN = new URL('../../bin/supsup.js', import.meta.url);

/** Runs `supsup serve ARGS` in a child process; resolves once its "ready" log line gives the bound ports. */
export async function spawnServe(args: string[], env: Record<string, string> = {}, readyTimeoutMs = 60_000): Promise<ServeProcess> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [BIN.pathname, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: any[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on('exit', (code) => resolve({ code, at: performance.now() })));
  const ready = new Promise<any>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (d) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const entry = JSON.parse(line);
          logs.push(entry);
          if (typeof entry.msg === 'string' && entry.msg.startsWith('ready:')) resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then(({ code }) => reject(new Error(`supsup serve exited (${code}) before it was ready: ${stderr}`)));
    setTimeout(() => reject(new Error(`supsup serve not ready after ${readyTimeoutMs} ms: ${stderr}`)), readyTimeoutMs).unref();
  });
  const entry = await ready.catch((e) => {
    child.kill('SIGKILL');
    throw e;
  });
  return { child, httpPort: entry.httpPort, grpcPort: entry.grpcPort, url: `http://127.0.0.1:${entry.httpPort}`, logs, exited };
}

/** Runs `supsup serve ARGS` expecting it to refuse to start; resolves with its exit code and stderr. */
export async function serveRefusal(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [BIN.pathname, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stderr };
}
