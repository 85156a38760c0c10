import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = new URL('../bin/supsup.js', import.meta.url).pathname;
const EXAMPLE = new URL('../models/example-lenet', import.meta.url).pathname;
const COMMANDS = ['serve', 'classify', 'train', 'eval', 'store', 'hopsupsup', 'bench'];

async function supsup(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('supsup CLI', () => {
  it('lists its commands and refuses an unknown one with exit code 2', async () => {
    const help = await supsup('--help');
    assert.equal(help.code, 0);
    for (const c of ['serve', 'classify', 'train', 'eval', 'bench']) assert.match(help.stdout, new RegExp(`\\n  ${c} `));
    const bad = await supsup('frobnicate');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
  });

  it('prints its version, and every command\'s help with -h, --help and `supsup help CMD`', async () => {
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-V'], ['serve', '--version']]) {
      const r = await supsup(...args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^supsup ${version.replace(/\./g, '\\.')} \\((commit [0-9a-f]+, )?node ${process.version.replace(/\./g, '\\.')}\\)\n$`));
    }
    for (const command of COMMANDS) {
      const forms = [[command, '-h'], [command, '--help'], ['help', command]];
      const outputs = await Promise.all(forms.map((args) => supsup(...args)));
      for (const [i, r] of outputs.entries()) {
        assert.equal(r.code, 0, `${forms[i].join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^usage: supsup ${command} `), forms[i].join(' '));
        assert.equal(r.stdout, outputs[0].stdout, `${forms[i].join(' ')} prints the same help as ${command} -h`);
      }
    }
    const sub = await supsup('help', 'hopsupsup', 'eval');
    assert.equal(sub.code, 0, sub.stderr);
    assert.match(sub.stdout, /^usage: supsup hopsupsup eval /);
  });

  it('exits 2 on every usage error and names it', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['help', 'frobnicate'], /unknown command "frobnicate"/],
      [['--frobnicate'], /unknown command "--frobnicate"/],
      ...COMMANDS.filter((c) => c !== 'hopsupsup' && c !== 'store').map((c): [string[], RegExp] => [[c, '--frobnicate'], /Unknown option '--frobnicate'/]),
      [['hopsupsup', 'eval', '--frobnicate'], /Unknown option '--frobnicate'/],
      [['hopsupsup', 'frobnicate'], /unknown hopsupsup subcommand "frobnicate"/],
      [['store', 'sideways'], /push or pull comes first/],
      [['store', 'push', '--model', EXAMPLE], /--store URL is required/],
      [['classify', '--examples', 'many'], /--examples: must be a whole number, got "many"/],
      [['bench', '--runs', '0'], /--runs: must be at least 1, got "0"/],
      [['serve', '--http-port', '70000'], /--http-port: must be a port number from 0 to 65535, got "70000"/],
      [['train', '--model', EXAMPLE, '--tasks', '2', '--no-task-ids', '--workers', '2'], /--no-task-ids trains one stream in order/],
      [['eval', '--model', EXAMPLE, '--save-epsilon'], /--save-epsilon needs --epsilon X/],
    ];
    const results = await Promise.all(cases.map(([args]) => supsup(...args)));
    for (const [i, r] of results.entries()) {
      const [args, message] = cases[i];
      assert.equal(r.code, 2, `supsup ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('classifies a JSON file with a given task, and names the file of a corrupt model without a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'supsup-cli-'));
    try {
      const input = join(dir, 'in.json');
      await writeFile(input, JSON.stringify({ inputs: [new Array(784).fill(0.5), new Array(784).fill(0)] }));
      const ok = await supsup('classify', '--model', EXAMPLE, '--input', input, '--task', 'random-3', '--json');
      assert.equal(ok.code, 0, ok.stderr);
      const { predictions } = JSON.parse(ok.stdout) as { predictions: { label: number; probabilities: number[]; task: { id: string; inferred: boolean } }[] };
      assert.equal(predictions.length, 2);
      for (const p of predictions) {
        assert.equal(p.task.id, 'random-3');
        assert.equal(p.task.inferred, false);
        assert.equal(p.probabilities.length, 10);
        assert.ok(Math.abs(p.probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      }
      const broken = join(dir, 'model');
      await run('cp', ['-r', EXAMPLE, broken]);
      const masks = join(broken, 'masks.bin');
      const bytes = await readFile(masks);
      bytes[bytes.length - 100] ^= 0xff;
      await writeFile(masks, bytes);
      const bad = await supsup('classify', '--model', broken, '--input', input, '--task', 'random-3');
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /masks\.bin/);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bench writes JSON with the kernel beside its memory-read floor and the bank within 5% of k·P/8', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'supsup-bench-'));
    try {
      const out = join(dir, 'bench.json');
      const r = await supsup('bench', '--quick', '--runs', '1', '--out', out);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /backend: \w+/);
      const report = JSON.parse(await readFile(out, 'utf8'));
      const [kernel] = report.kernelRows;
      assert.equal(kernel.k, 100);
      if (kernel.nativeMs !== null) assert.ok(kernel.floorMs > 0 && kernel.nativeRatio > 0);
      const [engine] = report.engineRows;
      assert.equal(engine.idealBytes, Math.ceil((100 * 315_200) / 8));
      assert.ok(engine.bankOverIdeal >= 1 && engine.bankOverIdeal <= 1.05, `bank ${engine.bankOverIdeal} × k·P/8`);
      for (const f of ['givenBatch1Ms', 'givenBatch128Ms', 'inferFirstBatch128Ms', 'inferWholeBatch128Ms']) assert.ok(engine[f] > 0, f);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
