#!/usr/bin/env node
// The CLI: lib/ (src/ compiled by bin/build-js.mjs, which `npm ci` runs) when it was compiled from the src/ here,
// else the TypeScript itself through tsx's loader, so an edit to src/ is never answered by stale JavaScript.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HASH_FILE, LIB, sourceHash } from './source-hash.mjs';

let compiled = false;
try {
  compiled = readFileSync(join(LIB, HASH_FILE), 'utf8') === sourceHash();
} catch {
  // no lib/: run the TypeScript
}
if (compiled) {
  await import('../lib/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
