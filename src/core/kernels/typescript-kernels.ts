// Plain TypeScript MaskKernels: the fallback when the native addon is not built, and the oracle the native
// kernels are tested against. Written to be obviously correct first:
//
// - scores: per 4-weight group a 16-entry table of partial sums of v (entry n = Σ of the weights whose bit
//   is set in n), kept in float64, so one 32-bit mask word costs 8 table look-ups instead of 32 bit tests.
//   The weight dimension is tiled so a tile's tables stay in cache while every block streams through it
//   (the bank is block-major, so each block contributes one contiguous chunk per tile).
// - subsetCount: iterate the set bits of each chosen slot's words.
//
// Sums are accumulated in float64 and rounded to float32 once, at the end.
import { BLOCK_SLOTS } from '../mask-bank.ts';
import type { MaskKernels } from './mask-kernels.ts';

/** Words per tile: 64 words × 8 groups × 16 doubles = 64 KiB of tables. */
const TILE_WORDS = 64;

export const typescriptKernels: MaskKernels = {
  name: 'typescript',

  scores(bank, words, blocks, v, examples, out) {
    checkScoresArgs(bank, words, blocks, v, examples, out);
    const slots = blocks * BLOCK_SLOTS;
    const acc = new Float64Array(examples * slots);
    const table = new Float64Array(TILE_WORDS * 8 * 16);
    for (let j0 = 0; j0 < words; j0 += TILE_WORDS) {
      const n = Math.min(TILE_WORDS, words - j0);
      for (let e = 0; e < examples; e++) {
        buildNibbleTables(v, e * words * 32 + j0 * 32, n, table);
        const accBase = e * slots;
        for (let b = 0; b < blocks; b++) {
          const chunk = (b * words + j0) * BLOCK_SLOTS;
          for (let s = 0; s < BLOCK_SLOTS; s++) {
            let sum = 0;
            for (let jj = 0; jj < n; jj++) {
              const x = bank[chunk + jj * BLOCK_SLOTS + s];
              if (x === 0) continue;
              const t = jj * 128;
              sum +=
                table[t + (x & 15)] +
                table[t + 16 + ((x >>> 4) & 15)] +
                table[t + 32 + ((x >>> 8) & 15)] +
                table[t + 48 + ((x >>> 12) & 15)] +
                table[t + 64 + ((x >>> 16) & 15)] +
                table[t + 80 + ((x >>> 20) & 15)] +
                table[t + 96 + ((x >>> 24) & 15)] +
                table[t + 112 + (x >>> 28)];
            }
            acc[accBase + b * BLOCK_SLOTS + s] += sum;
          }
        }
      }
    }
    out.set(acc);
  },

  subsetCount(bank, words, slots, out) {
    checkSubsetArgs(bank, words, slots, out);
    const counts = new Uint32Array(words * 32);
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i];
      const base = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
      for (let j = 0; j < words; j++) {
        let x = bank[base + j * BLOCK_SLOTS];
        while (x !== 0) {
          const low = x & -x;
          counts[j * 32 + 31 - Math.clz32(low)]++;
          x = (x ^ low) >>> 0;
        }
      }
    }
    out.set(counts);
  },

  gatherSlots(bank, words, slots, out, counts, at) {
    checkSlots(bank, words, slots);
    if (at?.some((j) => j < 0 || j >= words)) throw new RangeError('a word of at is outside the mask');
    const kept = at ?? Int32Array.from({ length: words }, (_, j) => j), held = kept.length;
    const blocks = Math.ceil(slots.length / BLOCK_SLOTS);
    if (out.length < blocks * BLOCK_SLOTS * held) throw new RangeError('out is shorter than ceil(slots / 8) * 8 * words');
    out.fill(0, 0, blocks * BLOCK_SLOTS * held);
    slots.forEach((slot, i) => {
      const src = Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS + (slot % BLOCK_SLOTS);
      const dst = Math.floor(i / BLOCK_SLOTS) * held * BLOCK_SLOTS + (i % BLOCK_SLOTS);
      for (let j = 0; j < held; j++) out[dst + j * BLOCK_SLOTS] = bank[src + kept[j] * BLOCK_SLOTS];
    });
    // Counted from the copies: word j of them is the kept word at[j].
    if (counts && held > 0) typescriptKernels.subsetCount(out.subarray(0, blocks * BLOCK_SLOTS * held), held, Int32Array.from(slots.keys()), counts);
  },
};

/** table[jj * 128 + g * 16 + n] = Σ_{i < 4, bit i of n} v[base + jj * 32 + g * 4 + i]. */
function buildNibbleTables(v: Float32Array, base: number, n: number, table: Float64Array): void {
  for (let jj = 0; jj < n; jj++) {
    for (let g = 0; g < 8; g++) {
      const w = base + jj * 32 + g * 4;
      const t = jj * 128 + g * 16;
      const a = v[w], b = v[w + 1], c = v[w + 2], d = v[w + 3];
      table[t] = 0;
      table[t + 1] = a;
      table[t + 2] = b;
      table[t + 3] = a + b;
      for (let k = 0; k < 4; k++) table[t + 4 + k] = table[t + k] + c;
      for (let k = 0; k < 8; k++) table[t + 8 + k] = table[t + k] + d;
    }
  }
}

function isCount(n: number): boolean {
  return Number.isInteger(n) && n >= 0;
}

/** The argument checks both implementations apply (the native addon repeats them in C++). */
export function checkScoresArgs(
  bank: Uint32Array,
  words: number,
  blocks: number,
  v: Float32Array,
  examples: number,
  out: Float32Array,
): void {
  if (!isCount(words) || words === 0) throw new RangeError('words must be a positive integer');
  if (!isCount(blocks)) throw new RangeError('blocks must be a non-negative integer');
  if (!isCount(examples)) throw new RangeError('examples must be a non-negative integer');
  if (bank.length < blocks * words * BLOCK_SLOTS) throw new RangeError('bank is shorter than blocks * words * 8');
  if (v.length < examples * words * 32) throw new RangeError('v is shorter than examples * words * 32');
  if (out.length < examples * blocks * BLOCK_SLOTS) throw new RangeError('out is shorter than examples * blocks * 8');
}

export function checkSubsetArgs(bank: Uint32Array, words: number, slots: Int32Array, out: Float32Array): void {
  checkSlots(bank, words, slots);
  if (out.length < words * 32) throw new RangeError('out is shorter than words * 32');
}

function checkSlots(bank: Uint32Array, words: number, slots: Int32Array): void {
  if (!isCount(words) || words === 0) throw new RangeError('words must be a positive integer');
  if (bank.length % (words * BLOCK_SLOTS) !== 0) throw new RangeError('bank length is not a multiple of words * 8');
  const capacity = bank.length / words;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i];
    if (s < 0 || s >= capacity) throw new RangeError(`slot ${s} is outside the bank (capacity ${capacity})`);
  }
}
