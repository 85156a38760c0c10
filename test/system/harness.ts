/**
 * A small harness for the system tests (.ci/run): named checks with time limits, TAP-like lines, child
 * processes that are always ended, and the closing line `system: N passed, M failed`.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new CheckFailure(message);
}

export class Suite {
  passed = 0;
  failed = 0;
  private readonly children = new Set<Child>();
  private readonly onFailure: (() => void)[] = [];

  /** Runs one check; a throw or the time limit fails it, and the suite goes on. Returns the check's value. */
  async check<T>(name: string, fn: () => Promise<T> | T, timeoutMs = 30_000): Promise<T | undefined> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(fn),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CheckFailure(`timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      this.pass(name, `${describe(value)}${ms(started)}`);
      return value;
    } catch (e) {
      this.fail(name, e);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  pass(name: string, detail = ''): void {
    this.passed++;
    console.log(`ok ${this.passed + this.failed} - ${name}${detail ? ` (${detail})` : ''}`);
  }

  fail(name: string, error: unknown): void {
    this.failed++;
    const message = error instanceof CheckFailure ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.log(`not ok ${this.passed + this.failed} - ${name}\n  ${message.split('\n').join('\n  ')}`);
  }

  /** Called once, at the end, when any check failed: print logs that explain it. */
  whenFailed(fn: () => void): void {
    this.onFailure.push(fn);
  }

  /** Starts a child whose stdout and stderr go to `logFile`; it is killed when the suite ends. */
  spawn(command: string, args: string[], logFile: string, options: SpawnOptions = {}): Child {
    const log = createWriteStream(logFile);
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const child = new Child(proc, logFile);
    proc.stdout?.on('data', (d: Buffer) => {
      log.write(d);
      child.output += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      log.write(d);
      child.output += d.toString();
    });
    proc.on('exit', () => this.children.delete(child));
    proc.on('error', (e) => {
      child.output += `\n[spawn error] ${e.message}\n`;
    });
    this.children.add(child);
    return child;
  }

  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }

  /** Prints the closing line and returns the exit code. */
  finish(): number {
    if (this.failed > 0) for (const fn of this.onFailure) fn();
    this.killAll();
    console.log(`system: ${this.passed} passed, ${this.failed} failed`);
    return this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}

export class Child {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(
    readonly proc: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.proc.kill(signal);
  }

  /** Resolves with the first match of `pattern` in the output so far or to come; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return waitUntil(
      () => {
        const m = this.output.match(pattern);
        if (m) return m;
        if (!this.running) throw new CheckFailure(`exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${pattern}`);
        return undefined;
      },
      timeoutMs,
      `no ${pattern} in the output`,
    );
  }

  tail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return this.output.trimEnd().split('\n').slice(-lines).join('\n');
    }
  }
}

/** Polls `probe` (every `intervalMs`) until it returns something other than undefined; a throw ends the wait. */
export async function waitUntil<T>(probe: () => T | undefined | Promise<T | undefined>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      if (e instanceof CheckFailure) throw e;
      lastError = (e as Error).message;
    }
    if (Date.now() >= deadline) throw new CheckFailure(`${what} within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Runs a command to completion (bounded), with optional stdin; resolves with its exit code and output. */
export function run(command: string, args: string[], options: { input?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d));
    proc.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new CheckFailure(`${command} ${args.join(' ')}: no exit within ${options.timeoutMs} ms`));
    }, options.timeoutMs ?? 60_000);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new CheckFailure(`${command}: ${e.message}`));
    });
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(options.input ?? '');
  });
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for programs that cannot listen on port 0 and report it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function fetchJson(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

function describe(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return `${value}, `;
  if (typeof value === 'number' || typeof value === 'boolean') return `${value}, `;
  return '';
}

function ms(started: number): string {
  return `${Math.round(performance.now() - started)} ms`;
}
