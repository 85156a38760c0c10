// All task masks, bit-packed (1 bit per weight), in one contiguous Uint32Array laid out for the kernels.
//
// Canonical mask (what files and the API carry): Uint32Array of `words` = ceil(P / 32) words; weight w is
// bit (w & 31) of word (w >>> 5); the padding bits past P are zero.
//
// Bank layout ("8-task interleaved blocks"): slots are grouped in blocks of 8. Block b occupies
// words [b * words * 8, (b + 1) * words * 8); inside it, word j of slot s (s = 0..7) sits at j * 8 + s.
// So one 256-bit load gives the same 32 weights for 8 tasks, which is what the SIMD kernels consume,
// and a block of 8 bounds the unused tail at 7 slots (the resident size stays within a few % of k·P/8).
//
// A plain Uint32Array rather than the `bitset` package: the kernels need raw words in this exact layout.

export const BLOCK_SLOTS = 8;

/** Counts the set bits of `slots` per weight over a bank (the kernels' subsetCount: MaskKernels in kernels/mask-kernels.ts). */
export type SlotCounter = (bank: Uint32Array, words: number, slots: Int32Array, out: Float32Array) => void;

export class MaskBank {
  readonly words: number;
  private readonly counts: Uint16Array;
  /**
   * Masks added since `counts` was last brought up to date, summed bit-sliced: word j's plane p holds bit p of the
   * pending sum of each of its 32 weights. Adding a mask costs a short carry chain per word instead of a step per
   * set bit, which is most of what loading thousands of tasks used to cost.
   */
  private readonly pending: Uint32Array;
  private pendingMasks = 0;
  /**
   * With a bulk counter: slots added since `counts` was last brought up to date. Many of them (a model loading) are
   * counted in one pass of the counter over the whole bank (the native kernel reads 2500 masks in ~20 ms, where
   * the bit-sliced sum takes ~15× longer); a few (a task added while serving) one by one.
   */
  private uncounted: number[] = [];
  private data: Uint32Array;
  private occupied: boolean[] = [];
  /** No slot below this is free (so finding the lowest free slot does not rescan thousands of occupied ones). */
  private firstFree = 0;
  private size = 0;

  constructor(
    words: number,
    expectedTasks = 0,
    private readonly countSlots?: SlotCounter,
  ) {
    if (!Number.isInteger(words) || words <= 0) throw new RangeError(`words must be a positive integer`);
    this.words = words;
    this.counts = new Uint16Array(words * 32);
    this.pending = new Uint32Array(words * PENDING_PLANES);
    this.data = sharedWords(blocksFor(expectedTasks) * words * BLOCK_SLOTS);
  }

  /** Per weight (padded to words * 32): how many stored tasks keep it. Up to date after every add/remove. */
  get count(): Uint16Array {
    this.flushPending();
    return this.counts;
  }

  /** Number of stored masks (k). */
  get taskCount(): number {
    return this.size;
  }

  /** Slots the kernels see (a multiple of 8; includes empty slots, which the caller filters out). */
  get slotCapacity(): number {
    return this.data.length / this.words;
  }

  get blocks(): number {
    return this.slotCapacity / BLOCK_SLOTS;
  }

  /**
   * The raw interleaved store, for the kernels. Valid until the next add() that grows the bank. Shared memory, so
   * another thread can read it in place (the serving runtime's given-task calls, runtime/inline-given.ts).
   */
  get raw(): Uint32Array {
    return this.data;
  }

  /** Bytes held by the mask bits (the k-dependent memory). */
  get residentBytes(): number {
    return this.data.byteLength;
  }

  has(slot: number): boolean {
    return this.occupied[slot] === true;
  }

  /** Occupied slots in increasing order: the only ones that may take part in task inference. */
  occupiedSlots(): Int32Array {
    const out = new Int32Array(this.size);
    let n = 0;
    for (let s = 0; s < this.occupied.length; s++) if (this.occupied[s]) out[n++] = s;
    return out;
  }

  /** Stores a canonical mask in the lowest free slot and returns that slot. Other slots are not touched. */
  add(mask: Uint32Array): number {
    this.checkMask(mask);
    let slot = this.firstFree;
    while (this.occupied[slot]) slot++;
    if (slot >= this.slotCapacity) this.grow();
    this.writeSlot(slot, mask);
    this.occupied[slot] = true;
    this.firstFree = slot + 1;
    this.size++;
    if (this.countSlots) this.uncounted.push(slot);
    else this.addPending(mask);
    return slot;
  }

  /** Clears a slot; its bits are zeroed so it contributes nothing to any kernel. */
  remove(slot: number): void {
    if (!this.has(slot)) throw new RangeError(`slot ${slot} is empty`);
    this.flushPending();
    this.adjustCount(this.get(slot), -1);
    this.writeSlot(slot, new Uint32Array(this.words));
    this.occupied[slot] = false;
    this.firstFree = Math.min(this.firstFree, slot);
    this.size--;
  }

  /** The canonical mask of a slot. */
  get(slot: number): Uint32Array {
    if (!this.has(slot)) throw new RangeError(`slot ${slot} is empty`);
    const out = new Uint32Array(this.words);
    const base = blockBase(slot, this.words);
    const s = slot % BLOCK_SLOTS;
    for (let j = 0; j < this.words; j++) out[j] = this.data[base + j * BLOCK_SLOTS + s];
    return out;
  }

  /** count[w] += delta for every weight w the mask keeps. */
  private adjustCount(mask: Uint32Array, delta: number): void {
    for (let j = 0; j < this.words; j++) {
      let w = mask[j];
      while (w !== 0) {
        this.counts[j * 32 + 31 - Math.clz32(w & -w)] += delta;
        w &= w - 1;
      }
    }
  }

  private addPending(mask: Uint32Array): void {
    const planes = this.pending;
    for (let j = 0; j < this.words; j++) {
      let carry = mask[j];
      for (let b = j * PENDING_PLANES; carry !== 0; b++) {
        const next = planes[b] & carry;
        planes[b] ^= carry;
        carry = next;
      }
    }
    if (++this.pendingMasks === 0xffff) this.flushPending(); // the planes hold sums below 2^16
  }

  private flushPending(): void {
    this.countAdded();
    if (this.pendingMasks === 0) return;
    const used = 32 - Math.clz32(this.pendingMasks);
    for (let j = 0; j < this.words; j++) {
      for (let p = 0; p < used; p++) {
        const b = j * PENDING_PLANES + p;
        let w = this.pending[b];
        if (w === 0) continue;
        this.pending[b] = 0;
        const weight = 1 << p;
        while (w !== 0) {
          this.counts[j * 32 + 31 - Math.clz32(w & -w)] += weight;
          w &= w - 1;
        }
      }
    }
    this.pendingMasks = 0;
  }

  /** Brings `counts` up to date with the slots the bulk counter has not counted yet. */
  private countAdded(): void {
    if (this.uncounted.length === 0) return;
    if (this.uncounted.length * BULK_COUNT_RATIO >= this.size) {
      const all = new Float32Array(this.words * 32);
      this.countSlots!(this.data, this.words, this.occupiedSlots(), all);
      this.counts.set(all);
    } else {
      for (const slot of this.uncounted) this.adjustCount(this.get(slot), 1);
    }
    this.uncounted = [];
  }

  private writeSlot(slot: number, mask: Uint32Array): void {
    const base = blockBase(slot, this.words);
    const s = slot % BLOCK_SLOTS;
    for (let j = 0; j < this.words; j++) this.data[base + j * BLOCK_SLOTS + s] = mask[j];
  }

  /** Grows by one block, or by 1/32 of the bank when that is more, so hot adds stay amortised O(1) per task. */
  private grow(): void {
    const more = Math.max(1, Math.ceil(this.blocks / 32));
    const next = sharedWords((this.blocks + more) * this.words * BLOCK_SLOTS);
    next.set(this.data);
    this.data = next;
  }

  private checkMask(mask: Uint32Array): void {
    if (!(mask instanceof Uint32Array) || mask.length !== this.words) {
      throw new RangeError(`a mask must be a Uint32Array of ${this.words} words`);
    }
  }
}

/** Whether a canonical mask sets any of the padding bits past its `weights` weights (it must not). */
export function paddingBitsSet(mask: Uint32Array, weights: number): boolean {
  const tail = weights & 31;
  return tail !== 0 && mask[mask.length - 1] >>> tail !== 0;
}

/** Set bits of a packed mask. */
export function popcount(mask: Uint32Array): number {
  let n = 0;
  for (let j = 0; j < mask.length; j++) {
    let v = mask[j];
    v = v - ((v >>> 1) & 0x55555555);
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    n += Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
  }
  return n;
}

/** Fraction of the P = `weights` mask bits that are set. */
export function maskDensity(mask: Uint32Array, weights: number): number {
  return popcount(mask) / weights;
}

const PENDING_PLANES = 16;
/** Recount the whole bank once at least 1/BULK_COUNT_RATIO of its masks are uncounted (one mask counted alone costs ~30× its share of a bulk pass). */
const BULK_COUNT_RATIO = 32;

function sharedWords(n: number): Uint32Array {
  return new Uint32Array(new SharedArrayBuffer(n * 4));
}

function blocksFor(tasks: number): number {
  return Math.ceil(Math.max(0, tasks) / BLOCK_SLOTS);
}

function blockBase(slot: number, words: number): number {
  return Math.floor(slot / BLOCK_SLOTS) * words * BLOCK_SLOTS;
}
