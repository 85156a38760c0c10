import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Architecture } from '../src/core/architecture.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { createHopfieldModel } from '../src/model/hopfield-model.ts';

const run = promisify(execFile);
const BIN = new URL('../bin/supsup.js', import.meta.url).pathname;
const ARCH: Architecture = { inputSize: 784, hidden: [64, 32], outputs: 10, classes: 10 };

async function supsup(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { timeout: 300_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function modelWithTasks(dir: string, ids: string[]): Promise<void> {
  const rng = new Xoshiro128(5);
  await createHopfieldModel(dir, { architecture: ARCH, seed: 2, rule: 'storkey', cueBits: 16 }, ids.map((id) => ({ id, name: id, masks: ARCH.hidden.map((d) => Uint8Array.from({ length: d }, () => rng.nextUint32() & 1)) })));
}

describe('supsup hopsupsup', () => {
  let root: string;
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('is listed, explains itself, and refuses an unknown subcommand', async () => {
    assert.match((await supsup('--help')).stdout, /\n {2}hopsupsup /);
    const help = await supsup('hopsupsup', '--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /train .*\n[\s\S]*eval [\s\S]*capacity /);
    const bad = await supsup('hopsupsup', 'frobnicate');
    assert.equal(bad.code, 2, 'a usage error');
    assert.match(bad.stderr, /unknown hopsupsup subcommand "frobnicate"/);
  });

  it('eval reports task given against task recalled for each SplitMNIST task, and refuses a model of other tasks', async () => {
    root = await mkdtemp(join(tmpdir(), 'supsup-hopcli-'));
    const split = join(root, 'split');
    await modelWithTasks(split, ['split-0', 'split-1', 'split-2', 'split-3', 'split-4']);
    const out = join(root, 'eval.json');
    const ok = await supsup('hopsupsup', 'eval', '--model', split, '--out', out, '--quiet');
    assert.equal(ok.code, 0, ok.stderr);
    const report = JSON.parse(await readFile(out, 'utf8'));
    assert.deepEqual(report.tasks.map((t: { id: string }) => t.id), ['split-0', 'split-1', 'split-2', 'split-3', 'split-4']);
    assert.equal(report.tasks.reduce((n: number, t: { examples: number }) => n + t.examples, 0), 10_000, 'every digit of the standard MNIST test set');
    assert.ok(report.summary.maxSteps <= 30);
    const other = join(root, 'other');
    await modelWithTasks(other, ['a', 'b']);
    const refused = await supsup('hopsupsup', 'eval', '--model', other);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /task "a" is not SplitMNIST task split-0/);
  });
});
