/**
 * bin/build-js.mjs compiles src/ into lib/, and bin/supsup.js runs lib/ only while it was compiled from the src/ beside
 * it: with a stale lib/ it runs the TypeScript through tsx. Told apart by where the stack of an error points.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: plain JavaScript without declarations (bin/ is not TypeScript)
import { HASH_FILE, LIB, sourceHash } from '../bin/source-hash.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const node = (...args: string[]) => spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SUPSUP_DEBUG: '1' } });
/** A command that fails inside the model store, so its stack names the file that ran. */
const failingCommand = () => node('bin/supsup.js', 'classify', '--model', join(ROOT, 'no-such-model'), '--examples', '1');

describe('compiled lib/', () => {
  it('is built from src/ with every relative .ts specifier turned into .js, and the CLI runs it', () => {
    const build = node('bin/build-js.mjs');
    assert.equal(build.status, 0, build.stderr);
    assert.equal(readFileSync(join(LIB, HASH_FILE), 'utf8'), sourceHash());
    const files = readdirSync(LIB, { recursive: true }).map(String).filter((f) => f.endsWith('.js'));
    assert.ok(files.includes(join('cli', 'main.js')) && files.includes(join('runtime', 'engine-worker.js')));
    for (const f of files) assert.doesNotMatch(readFileSync(join(LIB, f), 'utf8'), /["']\.{1,2}\/[^"'\n]*\.ts["']/, f);
    const run = failingCommand();
    assert.equal(run.status, 1);
    assert.match(run.stderr, /no-such-model.*missing/);
    assert.match(run.stderr, /\/lib\/model\/model-state\.js/);
  });

  it('is not run once src/ differs from what it was compiled from: the TypeScript runs instead', () => {
    const hashFile = join(LIB, HASH_FILE);
    const built = readFileSync(hashFile, 'utf8');
    writeFileSync(hashFile, 'compiled from another src/');
    try {
      const run = failingCommand();
      assert.equal(run.status, 1);
      assert.match(run.stderr, /\/src\/model\/model-state\.ts/);
      assert.doesNotMatch(run.stderr, /\/lib\//);
    } finally {
      writeFileSync(hashFile, built);
    }
  });
});
