/**
 * A real PostgreSQL for tests: initdb in a temp directory, started on a free 127.0.0.1 port, removed at the
 * end. Needs Debian's postgresql package (the binaries under /usr/lib/postgresql/<v>/bin); `skipReason()` says
 * why not when it is absent. Run as root, the server runs as the `postgres` user (it refuses root).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';

function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : undefined;
}

function postgresUid(): number | undefined {
  try {
    return Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
}

export function skipReason(): string | undefined {
  if (!binDir()) return 'PostgreSQL is not installed (apt-get install postgresql)';
  if (process.getuid?.() === 0 && postgresUid() === undefined) return 'running as root without a postgres user to run the server as';
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TestPostgres {
  /** postgres://…/supsup, without a model parameter. */
  url: string;
  stop(): void;
  start(): void;
  remove(): void;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'supsup-pg-'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, postgresUid()!, -1);
  const run = (tool: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { stdio: 'pipe' }) : execFileSync(join(bin, tool), args, { stdio: 'pipe' });
  const port = await freePort();
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'supsup', '--auth=trust', '-E', 'UTF8']);
  const start = () => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start']);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  start();
  execFileSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'supsup', 'supsup'], { stdio: 'pipe' });
  return {
    url: `postgres://supsup@127.0.0.1:${port}/supsup`,
    start,
    stop,
    remove: () => {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
