import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { isPretty, prettyLine } from '../src/service/log-format.ts';
import { tempDir, tinyModel } from './support/service-fixture.ts';

const BIN = new URL('../bin/supsup.js', import.meta.url).pathname;
const HAS_SCRIPT = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

describe('log format', () => {
  it('turns a pino record into one line: time, level, message, the other fields; an error with its stack below', () => {
    const time = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const line = JSON.stringify({ level: 30, time, pid: 1, hostname: 'h', reqId: 'abc', httpPort: 8080, route: '/tasks/{id}', msg: 'ready: HTTP on 0.0.0.0:8080' });
    assert.equal(prettyLine(line + '\n'), '03:04:05.678 INFO  ready: HTTP on 0.0.0.0:8080  reqId=abc  httpPort=8080  route=/tasks/{id}\n');
    const error = prettyLine(JSON.stringify({ level: 50, time, msg: 'failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.ts:1:1)' }, note: 'two words' }));
    assert.equal(error, '03:04:05.678 ERROR failed  note="two words"\n    Error: boom\n        at f (x.ts:1:1)\n');
    assert.equal(prettyLine('not json\n'), 'not json\n', 'anything else passes through');
  });

  it('is pretty on a terminal only when auto, always when pretty, never when json', () => {
    assert.equal(isPretty('auto', { isTTY: true }), true);
    assert.equal(isPretty('auto', { isTTY: undefined }), false);
    assert.equal(isPretty('pretty', {}), true);
    assert.equal(isPretty('json', { isTTY: true }), false);
  });
});

describe('supsup serve on a terminal', { skip: HAS_SCRIPT ? false : 'util-linux `script` (a pseudo-terminal) is not installed' }, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let model: string;
  before(async () => {
    tmp = await tempDir();
    model = await tinyModel(tmp.dir, 2);
  });
  after(async () => tmp?.remove());

  it('logs human-readable lines when stdout is a TTY, and JSON lines when told to', async () => {
    const args = ['--model', model, '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0', '--backend', 'wasm', '--kernels', 'typescript'];
    const pretty = await untilReady([...args]);
    assert.match(pretty, /^\d\d:\d\d:\d\d\.\d{3} INFO  ready: HTTP on 127\.0\.0\.1:\d+, gRPC on 127\.0\.0\.1:\d+ {2}httpPort=\d+/m);
    assert.doesNotMatch(pretty, /^\{/m, 'no JSON lines');
    const json = await untilReady([...args, '--log-format', 'json']);
    assert.match(json, /^\{"level":30,.*"msg":"ready: HTTP on 127\.0\.0\.1:\d+/m);
  });
});

/** Runs `supsup serve ARGS` on a pseudo-terminal (util-linux script) until it logs that it is ready; returns what it printed. */
async function untilReady(args: string[]): Promise<string> {
  const command = [process.execPath, BIN, 'serve', ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within 90 s:\n${text}`)), 90_000);
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk.replace(/\r\n/g, '\n');
        if (/ready: HTTP on/.test(text)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`exited ${code} before it was ready:\n${text}`)));
    });
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.on('exit', resolve)));
  }
  return text;
}
