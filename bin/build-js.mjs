#!/usr/bin/env node
// Compiles src/ (TypeScript) into lib/ (plain ES modules, the same layout one level up from the repository root as
// src/, so every `new URL('../../…', import.meta.url)` still finds package.json, proto/ and build/). bin/supsup.js
// runs lib/ when its recorded source hash matches src/ and tsx on src/ otherwise, so a stale or missing lib/ is never
// run: it only costs start-up time (tsx compiles at run time, and on Node 20 its loader is one more thread per isolate).
// `npm ci` runs this (package.json "install"); so does the Dockerfile. Type checking stays with `tsc --noEmit`.
//
//   node bin/build-js.mjs          build lib/ if it is stale (quiet when it is fresh)
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LIB, SRC, sourceFiles, sourceHash, HASH_FILE } from './source-hash.mjs';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Relative specifiers of sibling TypeScript modules ('./x.ts', "../y/z.ts"), in imports and in `new URL(…)` alike. */
const RELATIVE_TS = /(["'])(\.{1,2}\/[^"'\n]*?)\.ts\1/g;

async function build() {
  if (!existsSync(SRC)) return; // the Dockerfile's first `npm ci` runs before src/ is copied in
  const hash = sourceHash();
  let built;
  try {
    built = readFileSync(join(LIB, HASH_FILE), 'utf8');
  } catch {
    built = undefined;
  }
  if (built === hash) return;
  const { transform } = await import('esbuild');
  const tmp = `${LIB}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const file of sourceFiles()) {
    const source = readFileSync(join(SRC, file), 'utf8');
    let out = file;
    let code = source;
    if (file.endsWith('.ts')) {
      out = file.replace(/\.ts$/, '.js');
      code = (await transform(source, { loader: 'ts', format: 'esm', target: 'node20', sourcefile: `src/${file}` })).code.replace(RELATIVE_TS, '$1$2.js$1');
    }
    mkdirSync(dirname(join(tmp, out)), { recursive: true });
    writeFileSync(join(tmp, out), code);
  }
  writeFileSync(join(tmp, HASH_FILE), hash);
  rmSync(LIB, { recursive: true, force: true });
  renameSync(tmp, LIB);
  console.log(`supsup: compiled ${sourceFiles().length} files of src/ into ${LIB.slice(ROOT.length)}/`);
}

await build();
