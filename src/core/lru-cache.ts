/** A small LRU map that calls `evict` on what it drops (used to dispose cached tensors). */
export class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(
    private readonly capacity: number,
    private readonly evict: (value: V) => void,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity must be a positive integer`);
  }

  get size(): number {
    return this.map.size;
  }

  getOrCreate(key: K, create: () => V): V {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const value = create();
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const [oldKey, oldValue] = this.map.entries().next().value as [K, V];
      this.map.delete(oldKey);
      this.evict(oldValue);
    }
    return value;
  }

  delete(key: K): void {
    const v = this.map.get(key);
    if (v === undefined) return;
    this.map.delete(key);
    this.evict(v);
  }

  clear(): void {
    for (const v of this.map.values()) this.evict(v);
    this.map.clear();
  }
}
