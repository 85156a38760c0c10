// Multi-row scores in process, against the single-vector kernel and against another build of the addon:
// R rows through one `scoresMulti` pass, through 4-row `scores` passes (what merged rows took), and one row alone,
// alternating builds and forms in every round; medians and ratios to one row.
//
//   node --import tsx bench/rows-kernels.ts [--k 2500] [--words 9850] [--rows 4,8,16] [--runs 7] [--old .bench/main.node] [--simd avx2]
//
// --old: other builds, comma-separated (e.g. main's build/Release/supsup_kernels.node copied aside), measured in the
// same rounds and named by their file names.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BLOCK_SLOTS } from '../src/core/mask-bank.ts';
import { Xoshiro128 } from '../src/core/prng.ts';
import { loadNativeAddon, type NativeAddon } from '../src/platform/native-addon.ts';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2500' },
    words: { type: 'string', default: '9850' },
    rows: { type: 'string', default: '4,8,16' },
    runs: { type: 'string', default: '7' },
    old: { type: 'string' },
    simd: { type: 'string', default: 'auto' },  // forces every kernel's path (avx2: what a Zen 3 machine runs)
  },
});
const k = Number(values.k), words = Number(values.words), runs = Number(values.runs);
const rowCounts = values.rows!.split(',').map(Number);
const blocks = Math.ceil(k / BLOCK_SLOTS), slots = blocks * BLOCK_SLOTS;

const builds: Array<[string, NativeAddon]> = [['new', loadNativeAddon().addon!]];
for (const path of values.old?.split(',') ?? []) builds.push([path.replace(/^.*\//, '').replace(/\.node$/, ''), createRequire(import.meta.url)(resolve(path)) as NativeAddon]);

const simd = values.simd as 'auto' | 'avx2' | 'scalar' | 'avx512';
for (const [, a] of builds) {
  a.setCpuPath(simd);
  a.setSimdLevel(simd);
}

const rng = new Xoshiro128(7);
const bank = new Uint32Array(words * blocks * BLOCK_SLOTS);
for (let i = 0; i < bank.length; i++) bank[i] = rng.nextUint32();
const maxRows = Math.max(...rowCounts);
const v = Float32Array.from({ length: maxRows * words * 32 }, () => (rng.nextFloat() - 0.5) * 1e-3);
const out = new Float32Array(maxRows * slots);

function time(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const forms: Array<[string, (a: NativeAddon) => void]> = [['1 row', (a) => a.scores(bank, words, blocks, v, 1, out)]];
// scoresOuter (per-example decisions: V never materialised) on LeNet 300-100's layer sizes, the words fixed by them
const sizes = Int32Array.from([784, 300, 100, 10]), scales = Float32Array.from([0.05, 0.08, 0.14]);
const outerWords = Math.ceil((784 * 300 + 300 * 100 + 100 * 10) / 32);
const signs = Uint32Array.from({ length: outerWords }, () => rng.nextUint32());
const acts = Float32Array.from({ length: maxRows * (784 + 300 + 100) }, () => rng.nextFloat());
const deltas = Float32Array.from({ length: maxRows * (300 + 100 + 10) }, () => rng.nextFloat() - 0.5);
const outer = (a: NativeAddon, r: number, nBlocks: number) =>
  a.scoresOuter(bank, outerWords, nBlocks, signs, sizes, scales, acts, deltas, r, out);
for (const r of rowCounts) {
  if (outerWords <= words) {
    forms.push([`${r} rows, scoresOuter`, (a) => outer(a, r, blocks)]);
    forms.push([`${r} rows, scoresOuter 1 block`, (a) => outer(a, r, 1)]);
  }
  forms.push([`${r} rows, scoresMulti`, (a) => a.scoresMulti(bank, words, blocks, v, r, out)]);
  forms.push([`${r} rows, 4-row scores passes`, (a) => {
    for (let i = 0; i < r; i += 4) a.scores(bank, words, blocks, v.subarray(i * words * 32), Math.min(4, r - i), out.subarray(i * slots));
  }]);
}

const samples = new Map<string, number[]>();
const flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(' ').filter((f) => /avx|fma/.test(f)).join(' ');
console.log(`k=${k} words=${words} blocks=${blocks}; paths: ${builds.map(([n, a]) => `${n} ${a.cpuPath()}/${a.simdLevel()}`).join(', ')}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
console.log(`flags: ${flags}`);
for (let run = 0; run <= runs; run++) {
  for (const [build, addon] of builds)
    for (const [form, f] of forms) {
      const ms = time(() => f(addon));
      if (run > 0) samples.set(`${build}: ${form}`, [...(samples.get(`${build}: ${form}`) ?? []), ms]);  // run 0 warms up
    }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [build] of builds) {
  const one = median(samples.get(`${build}: 1 row`)!);
  for (const [form] of forms) {
    const m = median(samples.get(`${build}: ${form}`)!);
    console.log(`${build.padEnd(6)} ${form.padEnd(30)} ${m.toFixed(2).padStart(8)} ms  ${(m / one).toFixed(2)} × one row`);
  }
}
console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
