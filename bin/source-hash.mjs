// What lib/ was compiled from: a hash of every file under src/ (path and bytes) and of the compiler script, which
// bin/build-js.mjs records in lib/ and bin/supsup.js checks before it runs lib/ (about 10 ms for ~130 files).
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SRC = fileURLToPath(new URL('../src', import.meta.url));
export const LIB = fileURLToPath(new URL('../lib', import.meta.url));
export const HASH_FILE = '.source-hash';
const COMPILER = fileURLToPath(new URL('./build-js.mjs', import.meta.url));

/** Files under src/ (TypeScript and the .mjs that starts workers), relative, sorted. */
export function sourceFiles() {
  return readdirSync(SRC, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && /\.(ts|mjs)$/.test(d.name))
    .map((d) => relative(SRC, join(d.parentPath ?? d.path, d.name)))
    .sort();
}

export function sourceHash() {
  const h = createHash('sha256');
  h.update(readFileSync(COMPILER));
  for (const file of sourceFiles()) h.update(`\0${file}\0`).update(readFileSync(join(SRC, file)));
  return h.digest('hex');
}
