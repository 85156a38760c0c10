// Kernel benchmark: native scores, TypeScript scores and the memory-read floor (the addon's readFloor over
// the same bank bytes, same 2 threads), measured interleaved so machine noise hits all three alike.
// `supsup bench` and the script bench/kernels.ts run it.
import { randomFillSync } from 'node:crypto';
import { BLOCK_SLOTS } from '../core/mask-bank.ts';
import { loadNativeAddon, MULTI_ROW_MIN } from '../platform/native-addon.ts';
import { typescriptKernels } from '../core/kernels/typescript-kernels.ts';

export interface BenchCase {
  /** e.g. "LeNet s=500". */
  model: string;
  /** Weights P. */
  weights: number;
  /** Stored tasks k. */
  k: number;
}

export interface BenchKernelsOptions {
  cases?: BenchCase[];
  /** Timed runs of native scores and of the floor per case (median reported). */
  runs?: number;
  /** Timed runs of TypeScript scores per case; fewer at large k (0 skips it). */
  tsRuns?: number;
  /** Vectors per scores call. */
  examples?: number;
  log?: (line: string) => void;
}

export interface BenchRow {
  model: string;
  weights: number;
  words: number;
  k: number;
  blocks: number;
  examples: number;
  /** Bytes the kernel reads: the bank, blocks × 8 × words × 4 (k·P/8 rounded up to whole blocks and words). */
  bankBytes: number;
  floorMs: number | null;
  floorGBps: number | null;
  nativeMs: number | null;
  nativePath: string | null;
  nativeRatio: number | null;
  typescriptMs: number | null;
  typescriptRatio: number | null;
  /** Native subsetCount over half the slots (one binary-search round's count). */
  subsetMs: number | null;
  runs: number;
  tsRuns: number;
}

export const LENET_S500 = 315_200;
export const FC1024_S500 = 2_363_392;

export const DEFAULT_CASES: BenchCase[] = [
  { model: 'LeNet 300-100 s=500', weights: LENET_S500, k: 100 },
  { model: 'LeNet 300-100 s=500', weights: LENET_S500, k: 1000 },
  { model: 'LeNet 300-100 s=500', weights: LENET_S500, k: 2500 },
  { model: 'FC 1024-1024 s=500', weights: FC1024_S500, k: 250 },
];

export async function benchKernels(opts: BenchKernelsOptions = {}): Promise<BenchRow[]> {
  const cases = opts.cases ?? DEFAULT_CASES;
  const runs = Math.max(1, opts.runs ?? 15);
  const examples = Math.max(1, opts.examples ?? 1);
  const log = opts.log ?? (() => {});
  const { addon, reason } = loadNativeAddon();
  if (!addon) log(`(${reason}: native and floor columns are empty)`);
  const rows: BenchRow[] = [];
  for (const c of cases) {
    const words = Math.ceil(c.weights / 32);
    const blocks = Math.ceil(c.k / BLOCK_SLOTS);
    const bank = randomBank(blocks * BLOCK_SLOTS * words, c.k, words);
    const v = new Float32Array(examples * words * 32);
    for (let i = 0; i < v.length; i++) v[i] = i % (words * 32) < c.weights ? Math.random() * 2 - 1 : 0;
    const out = new Float32Array(examples * blocks * BLOCK_SLOTS);
    const tsRuns = Math.max(0, opts.tsRuns ?? (c.k * c.weights > 1e9 ? 3 : 5));
    const floor: number[] = [], native: number[] = [], ts: number[] = [], subset: number[] = [];
    const half = Int32Array.from({ length: Math.ceil(c.k / 2) }, (_, i) => 2 * i);
    const counts = new Float32Array(words * 32);
    // As the native MaskKernels do: many vectors go to the multi-row kernel.
    const multiRow = addon !== null && examples >= MULTI_ROW_MIN;
    const nativeScores = addon ? (multiRow ? addon.scoresMulti : addon.scores) : null;
    if (addon && nativeScores) {
      addon.readFloor(bank); // warm-up: page faults, helper thread start
      nativeScores(bank, words, blocks, v, examples, out);
    }
    for (let r = 0; r < runs; r++) {
      if (addon) {
        floor.push(time(() => addon.readFloor(bank)));
        native.push(time(() => nativeScores!(bank, words, blocks, v, examples, out)));
        subset.push(time(() => addon.subsetCount(bank, words, half, counts)));
      }
      // TypeScript is 10-100x slower: spread its runs over the loop so it sees the same noise.
      if (ts.length < tsRuns && r % Math.max(1, Math.floor(runs / tsRuns)) === 0) {
        ts.push(time(() => typescriptKernels.scores(bank, words, blocks, v, examples, out)));
      }
    }
    const floorMs = median(floor), nativeMs = median(native), typescriptMs = median(ts);
    const row: BenchRow = {
      model: c.model,
      weights: c.weights,
      words,
      k: c.k,
      blocks,
      examples,
      bankBytes: bank.byteLength,
      floorMs,
      floorGBps: floorMs === null ? null : bank.byteLength / floorMs / 1e6,
      nativeMs,
      nativePath: addon ? (multiRow ? `multi-row ${addon.simdLevel()}` : addon.cpuPath()) : null,
      nativeRatio: ratio(nativeMs, floorMs),
      typescriptMs,
      typescriptRatio: ratio(typescriptMs, floorMs),
      subsetMs: median(subset),
      runs,
      tsRuns: ts.length,
    };
    rows.push(row);
    log(formatRow(row));
  }
  return rows;
}

/** A bank with k random masks (about half the bits set, zero past `words`) and empty slots past k. */
function randomBank(length: number, k: number, words: number): Uint32Array {
  const bank = new Uint32Array(length);
  for (let off = 0; off < length; off += 1 << 16) randomFillSync(bank, off, Math.min(1 << 16, length - off));
  for (let slot = k; slot < length / words; slot++) {
    const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
    for (let j = 0; j < words; j++) bank[base + j * BLOCK_SLOTS] = 0;
  }
  return bank;
}

function time(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

export const HEADER =
  'model                    k      MB   floor ms  GB/s  native ms  ×floor    ts ms  ×floor  subset ms  path';

function fmt(x: number | null, width: number, digits: number): string {
  return (x === null ? '-' : x.toFixed(digits)).padStart(width);
}

export function formatRow(r: BenchRow): string {
  return [
    r.model.padEnd(22),
    String(r.k).padStart(5),
    fmt(r.bankBytes / 1e6, 7, 1),
    fmt(r.floorMs, 10, 3),
    fmt(r.floorGBps, 5, 1),
    fmt(r.nativeMs, 10, 3),
    fmt(r.nativeRatio, 7, 2),
    fmt(r.typescriptMs, 9, 1),
    fmt(r.typescriptRatio, 7, 1),
    fmt(r.subsetMs, 10, 3),
    ` ${r.nativePath ?? '-'}${r.examples > 1 ? ` ×${r.examples} vectors` : ''}`,
  ].join(' ');
}
