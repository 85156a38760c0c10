import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The package version, reported by OpenAPI and OIP server metadata. */
export const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

let commit: { value: string | undefined } | undefined;

/**
 * The source commit: SUPSUP_COMMIT when it is a hex commit id (the image build sets it; an image holds no .git),
 * else HEAD of the git checkout this code runs from, else undefined. Looked up once per process.
 */
export function sourceCommit(): string | undefined {
  if (!commit) {
    let value = /^[0-9a-f]{7,40}$/.test(process.env.SUPSUP_COMMIT ?? '') ? process.env.SUPSUP_COMMIT : undefined;
    if (value === undefined) {
      try {
        const cwd = new URL('../..', import.meta.url);
        value = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000, encoding: 'utf8' }).trim() || undefined;
      } catch {
        value = undefined; // no git, or not a checkout
      }
    }
    commit = { value };
  }
  return commit.value;
}
