// A Hopfield reservoir of binary patterns (HopSupSup, the paper's §3.5): one d × d matrix Ψ to which
// each task's neuron mask m ∈ {0,1}^d is added as an attractor z = 2m − 1 ∈ {−1,1}^d. Its size does not
// depend on how many patterns it holds; the patterns themselves are not kept. Pure typed-array math.
//
// Rules (symmetric updates, so Ψ stays symmetric):
// - hebbian (the paper's text): Ψ ← Ψ + z zᵀ / d
// - storkey (the authors' code): h = Ψ z, Ψ ← Ψ + (z zᵀ − I − z hᵀ − h zᵀ) / d
// Energy E(s) = −½ sᵀ Ψ s; stored patterns are (near) its local minima.
export type StorageRule = 'hebbian' | 'storkey';
export const STORAGE_RULES: readonly StorageRule[] = ['hebbian', 'storkey'];

export class HopfieldReservoir {
  readonly size: number;
  /** Ψ, size × size, row-major, symmetric. */
  readonly weights: Float32Array;
  /** Σ z over the stored patterns: their mean (sum / count) is where recall from data starts. */
  readonly patternSum: Int32Array;
  private stored: number;

  constructor(size: number, weights?: Float32Array, patternSum?: Int32Array, count = 0) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`reservoir size must be a positive integer, got ${size}`);
    if (weights && weights.length !== size * size) throw new RangeError(`Ψ must have ${size * size} entries, got ${weights.length}`);
    if (patternSum && patternSum.length !== size) throw new RangeError(`the pattern sum must have ${size} entries, got ${patternSum.length}`);
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`pattern count must be a non-negative integer, got ${count}`);
    this.size = size;
    this.weights = weights ?? new Float32Array(size * size);
    this.patternSum = patternSum ?? new Int32Array(size);
    this.stored = count;
  }

  /** How many patterns have been added (they are not kept). */
  get count(): number {
    return this.stored;
  }

  /** Adds the pattern of a 0/1 mask under `rule`. */
  storeMask(mask: Uint8Array, rule: StorageRule): void {
    this.store(patternOf(mask), rule);
  }

  /** Adds a ±1 pattern under `rule`. */
  store(z: Int8Array, rule: StorageRule): void {
    const d = this.size;
    checkPattern(z, d);
    const w = this.weights;
    if (rule === 'hebbian') {
      for (let i = 0; i < d; i++) {
        const zi = z[i] / d;
        const row = i * d;
        for (let j = 0; j < d; j++) w[row + j] += zi * z[j];
      }
    } else if (rule === 'storkey') {
      const h = this.field(z);
      for (let i = 0; i < d; i++) {
        const zi = z[i];
        const hi = h[i];
        const row = i * d;
        for (let j = 0; j < d; j++) w[row + j] += (zi * z[j] - zi * h[j] - hi * z[j]) / d;
        w[row + i] -= 1 / d;
      }
    } else {
      throw new RangeError(`unknown storage rule ${JSON.stringify(rule)}; expected one of ${STORAGE_RULES.join(', ')}`);
    }
    for (let i = 0; i < d; i++) this.patternSum[i] += z[i];
    this.stored++;
  }

  /** Ψ s (the local field), in float64 sums. */
  field(s: ArrayLike<number>, out: Float32Array = new Float32Array(this.size)): Float32Array {
    const d = this.size;
    const w = this.weights;
    for (let i = 0; i < d; i++) {
      let acc = 0;
      const row = i * d;
      for (let j = 0; j < d; j++) acc += w[row + j] * s[j];
      out[i] = acc;
    }
    return out;
  }

  /** E(s) = −½ sᵀ Ψ s. */
  energy(s: ArrayLike<number>): number {
    const h = this.field(s);
    let e = 0;
    for (let i = 0; i < this.size; i++) e += s[i] * h[i];
    return -0.5 * e;
  }

  /** The mean of the stored ±1 patterns (all zeros while empty). */
  meanPattern(): Float32Array {
    const mean = new Float32Array(this.size);
    if (this.stored > 0) for (let i = 0; i < this.size; i++) mean[i] = this.patternSum[i] / this.stored;
    return mean;
  }

  /**
   * Recall from a partial cue by asynchronous descent: bits in `cue` (index → ±1) are clamped, every other
   * bit starts at 0 and is then set, in index order, to the sign of its field from the other bits (ties
   * +1). Sweeps repeat until no bit changes; each flip after the first sweep strictly lowers E (the
   * field excludes the bit's own coupling Ψᵢᵢ), so this ends. Returns the pattern and the energy after
   * each sweep.
   */
  recallFromCue(cue: ReadonlyMap<number, number>, maxSweeps = 100): { pattern: Int8Array; sweeps: number; energies: number[] } {
    const d = this.size;
    const w = this.weights;
    const s = new Int8Array(d);
    for (const [i, v] of cue) {
      if (!Number.isInteger(i) || i < 0 || i >= d || (v !== 1 && v !== -1)) throw new RangeError(`bad cue entry ${i} → ${v}`);
      s[i] = v;
    }
    const h = this.field(s);
    const energies: number[] = [];
    let sweeps = 0;
    for (let changed = true; changed && sweeps < maxSweeps; sweeps++) {
      changed = false;
      for (let i = 0; i < d; i++) {
        if (cue.has(i)) continue;
        const own = h[i] - w[i * d + i] * s[i];
        const next = own >= 0 ? 1 : -1;
        if (next === s[i]) continue;
        const delta = next - s[i];
        s[i] = next;
        changed = true;
        // Ψ is symmetric: column i is row i.
        const row = i * d;
        for (let j = 0; j < d; j++) h[j] += delta * w[row + j];
      }
      let e = 0;
      for (let i = 0; i < d; i++) e += s[i] * h[i];
      energies.push(-0.5 * e);
    }
    return { pattern: s, sweeps, energies };
  }
}

/** z = 2m − 1 for a 0/1 mask. */
export function patternOf(mask: Uint8Array): Int8Array {
  const z = new Int8Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== 0 && mask[i] !== 1) throw new RangeError(`mask entry ${i} is ${mask[i]}, expected 0 or 1`);
    z[i] = mask[i] ? 1 : -1;
  }
  return z;
}

/** m = (z + 1) / 2 for a ±1 pattern. */
export function maskOf(z: Int8Array): Uint8Array {
  return Uint8Array.from(z, (v) => (v > 0 ? 1 : 0));
}

/** How many positions two equal-length masks or patterns agree on. */
export function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same;
}

function checkPattern(z: Int8Array, d: number): void {
  if (z.length !== d) throw new RangeError(`a pattern for this reservoir has ${d} entries, got ${z.length}`);
  for (let i = 0; i < d; i++) if (z[i] !== 1 && z[i] !== -1) throw new RangeError(`pattern entry ${i} is ${z[i]}, expected ±1`);
}
