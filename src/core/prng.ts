// The project's own PRNG, part of the model file format: the base network's weights are regenerated
// from (architecture, seed, PRNG version), so changing anything here invalidates every stored mask.
//
// Version 1 ("xoshiro128ss-v1"): xoshiro128** (Blackman & Vigna) on four uint32 words, seeded by
// running splitmix32 (below) four times from the 32-bit seed. Pure 32-bit integer arithmetic
// (Math.imul, >>>), so it is identical on every platform and JS engine.

export const PRNG_VERSION = 1;

/** splitmix32: z += 0x9e3779b9, then the finaliser mix32. */
function splitmix32(state: { z: number }): number {
  state.z = (state.z + 0x9e3779b9) >>> 0;
  return mix32(state.z);
}

/** The splitmix32 / murmur3 finaliser: z = (z ^ z>>>16) * 0x85ebca6b; z = (z ^ z>>>13) * 0xc2b2ae35; z ^ z>>>16. */
export function mix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const sm = { z: seed >>> 0 };
    this.s0 = splitmix32(sm);
    this.s1 = splitmix32(sm);
    this.s2 = splitmix32(sm);
    this.s3 = splitmix32(sm);
  }

  /** Next uint32. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), by rejection so there is no modulo bias. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new RangeError(`bad range ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }
}

/** 32-bit mix of a seed, a stream index and a purpose (splitmix32's finaliser), so stream i's numbers do not depend on which worker draws them. */
export function deriveSeed(seed: number, stream: number, purpose: number): number {
  return mix32((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca77) ^ Math.imul(purpose + 1, 0xc2b2ae3d)) >>> 0);
}

/** Fisher–Yates in place (j from the end down to 1, swap with rng.nextInt(j + 1)). */
export function shuffle(a: { length: number; [i: number]: number }, rng: Xoshiro128): void {
  for (let j = a.length - 1; j >= 1; j--) {
    const k = rng.nextInt(j + 1);
    const t = a[j];
    a[j] = a[k];
    a[k] = t;
  }
}

/** A fixed shuffle of 0..n−1. */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  const a = Uint32Array.from({ length: n }, (_, i) => i);
  shuffle(a, new Xoshiro128(seed));
  return a;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
