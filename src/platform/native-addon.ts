// Loads the native addon (native/supsup_kernels.cc, built by `npm ci` / `npm run build:native` into
// build/Release/supsup_kernels.node) and wraps it as MaskKernels. When it is not built or does not load,
// callers get null and a one-line reason, and fall back to the TypeScript kernels.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ForwardBits } from '../core/kernels/forward-bits.ts';
import type { NormalizeInputs } from '../core/given-task-pass.ts';
import type { MaskKernels } from '../core/kernels/mask-kernels.ts';
import type { SuperposedKernel } from '../core/superposed-pass.ts';
import type { ColumnSumKernels } from '../core/kernels/column-sums.ts';
import { firstLine } from './first-line.ts';

/** What the addon exports. `readFloor` streams a buffer with the kernels' threads (memory-read floor). */
export interface NativeAddon {
  scores(bank: Uint32Array, words: number, blocks: number, v: Float32Array, examples: number, out: Float32Array): void;
  /** The same contract, vectors in the SIMD lanes: one bank pass serves 16 (AVX-512) or 8 vectors. */
  scoresMulti(bank: Uint32Array, words: number, blocks: number, v: Float32Array, examples: number, out: Float32Array): void;
  scoresOuter: NonNullable<MaskKernels['scoresOuter']>;
  /** `scores` of one vector, reading only the mask words where v is not all zero; the same bits (native/scores_sparse.cc). */
  scoresSparse(bank: Uint32Array, words: number, blocks: number, v: Float32Array, out: Float32Array): void;
  subsetCount(bank: Uint32Array, words: number, slots: Int32Array, out: Float32Array): void;
  /** The input layer's per-task column sums and their term (contract: src/core/kernels/column-sums.ts). */
  columnSums?: ColumnSumKernels['sums'];
  columnTerm?: ColumnSumKernels['term'];
  columnTotals?: ColumnSumKernels['totals'];
  gatherSlots: MaskKernels['gatherSlots'];
  /** The superposed pass's two halves (contract: SuperposedKernel in src/core/superposed-pass.ts). */
  superposedForward?: SuperposedKernel['forward'];
  superposedBackward?: SuperposedKernel['backward'];
  /** Training: RMSProp on scores and the GN effective weights (contract: src/core/score-update.ts). */
  rmspropStep(S: Float32Array, V: Float32Array, G: Float32Array, W: Float32Array, lr: number, alpha: number, eps: number): void;
  maskBySign(S: Float32Array, W: Float32Array, out: Float32Array): void;
  /** Reads every byte of the buffer once (2 threads) and returns a checksum, so the read cannot be skipped. */
  readFloor(buffer: ArrayBufferView | ArrayBuffer): number;
  /**
   * Training: C[m×n] = op(A)[m×k] · op(B)[k×n] (contract: src/train/step-products.ts). Optional: absent from
   * builds older than native/train_gemm.cc.
   */
  matmul?(A: Float32Array, B: Float32Array, C: Float32Array, m: number, k: number, n: number, transA: boolean, transB: boolean, relu: boolean, gate: Float32Array | null): void;
  /** "avx512" (`scores` and `subsetCount` have AVX-512 code; the rest run AVX2 there), "avx2" or "scalar": the code path in use. */
  cpuPath(): string;
  /** Forces a path (for tests and benchmarks); returns the path now in use. Process-wide. */
  setCpuPath(path: 'auto' | 'avx512' | 'avx2' | 'scalar'): string;
  /** Given-task forward from the packed bits (contract: forward-bits.ts). */
  forwardBits: ForwardBits;
  /** The given-task pass's input scaling (contract: normalizeInto in core/given-task-pass.ts). Absent from older builds. */
  normalize?: NormalizeInputs;
  /** The path of the newer kernels (forwardBits, multi-row scores, gatherSlots, matmul): "avx512", "avx2" or "scalar". */
  simdLevel(): SimdLevel;
  /** Forces that path (tests, benchmarks); throws if the CPU lacks it. Process-wide. */
  setSimdLevel(level: 'auto' | SimdLevel): SimdLevel;
}

export type SimdLevel = 'avx512' | 'avx2' | 'scalar';

/**
 * From this many vectors on, `scores` takes scoresMulti (measured at k = 2500 on Zen 5: per vector, 16 rows
 * in AVX-512 lanes cost ~0.4x and 8 in AVX2 lanes ~0.8x a single-vector pass; at 4 vectors the single-vector
 * kernel is still faster).
 */
export const MULTI_ROW_MIN = 6;

/**
 * From how many V rows scoresOfVectors makes one call (so scoresMulti runs) rather than 4-row `scores` passes.
 * k = 2500, bench/rows-kernels.ts: on AVX-512 two 4-row passes still beat one multi-row pass at 8 rows (5.6 × one
 * row against 7.0 ×) and lose at 16 (10.5 × against 9.3 ×); on AVX2, whose single-vector kernel is slower, one
 * multi-row pass of 8 rows costs 3.9 × one row against 8.7 × for two 4-row passes.
 */
export function multiRowFrom(level: SimdLevel): number {
  return level === 'avx2' ? MULTI_ROW_MIN : 9;
}

export const NATIVE_ADDON_PATH = fileURLToPath(new URL('../../build/Release/supsup_kernels.node', import.meta.url));

let cached: { addon: NativeAddon | null; reason: string } | undefined;

/** The addon, or null with a one-line reason. Loaded once per process. */
export function loadNativeAddon(): { addon: NativeAddon | null; reason: string } {
  if (cached) return cached;
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    const missing = (['scores', 'subsetCount', 'gatherSlots', 'rmspropStep', 'maskBySign'] as const).filter((f) => typeof addon[f] !== 'function');
    if (missing.length > 0) {
      cached = { addon: null, reason: `native addon at ${NATIVE_ADDON_PATH} lacks ${missing.join(', ')} (stale build: run \`npm run build:native\`)` };
    } else {
      cached = { addon, reason: `native addon loaded (${addon.cpuPath()})` };
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'MODULE_NOT_FOUND' ? 'not built (run `npm run build:native`)' : firstLine(e);
    cached = { addon: null, reason: `native addon ${why}` };
  }
  return cached;
}

/** Native MaskKernels, or null with a one-line reason. The name follows the addon's path: "native-avx2", ... */
export function loadNativeKernels(): { kernels: MaskKernels | null; reason: string } {
  const { addon, reason } = loadNativeAddon();
  if (!addon) return { kernels: null, reason };
  const kernels: MaskKernels = {
    get name() {
      return `native-${addon.cpuPath()}`;
    },
    scores: (bank, words, blocks, v, examples, out) =>
      examples === 1 && typeof addon.scoresSparse === 'function'
        ? addon.scoresSparse(bank, words, blocks, v, out)
        : examples >= MULTI_ROW_MIN && typeof addon.scoresMulti === 'function'
        ? addon.scoresMulti(bank, words, blocks, v, examples, out)
        : addon.scores(bank, words, blocks, v, examples, out),
    get multiRowFrom() {
      return multiRowFrom(addon.simdLevel());
    },
    subsetCount: (bank, words, slots, out) => addon.subsetCount(bank, words, slots, out),
    gatherSlots: (bank, words, slots, out, counts, at) => addon.gatherSlots(bank, words, slots, out, counts, at),
    forwardBits: typeof addon.forwardBits === 'function' ? addon.forwardBits : undefined,
    normalize: typeof addon.normalize === 'function' ? addon.normalize : undefined,
    scoresOuter: typeof addon.scoresOuter === 'function' ? addon.scoresOuter : undefined,
    columnSums:
      addon.columnSums && addon.columnTerm && addon.columnTotals ? { sums: addon.columnSums, term: addon.columnTerm, totals: addon.columnTotals } : undefined,
    superposed: addon.superposedForward && addon.superposedBackward ? { forward: addon.superposedForward, backward: addon.superposedBackward } : undefined,
  };
  return { kernels, reason };
}
