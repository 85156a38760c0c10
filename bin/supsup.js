#!/usr/bin/env node
// The CLI: lib/ (src/ compiled by bin/build-js.mjs, which `npm ci` runs) when it was compiled from the src/ here,
// else the TypeScript itself through tsx's loader, so an edit to src/ is never answered by stale JavaScript.
import { readFileSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { HASH_FILE, LIB, sourceHash } from './source-hash.mjs';

// Node 22+: V8's compiled code kept on disk (os.tmpdir()), so a restart does not compile TensorFlow.js, Fastify and
// gRPC again; the variable extends it to the engine worker. Node 20 has neither and ignores the variable.
const cache = module.enableCompileCache?.();
if (cache?.directory) process.env.NODE_COMPILE_CACHE ??= cache.directory;

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
