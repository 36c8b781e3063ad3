/**
 * A small per-isolate cache whose entries expire a given time after they were stored.
 *
 * Semantics: `get(k, now)` returns the value stored under k at most its `ttlMs` before `now`,
 * else undefined; `set` with ttlMs ≤ 0 stores nothing (caching off). At most `maxEntries` are
 * kept: storing a new key beyond that drops the oldest stored one (Map insertion order).
 * Only found records should be stored (a miss is never cached, so a new row is seen at once).
 * `getOrLoad` stores what its load found only when no `clear()` ran while it loaded: a lookup
 * that began before a revocation cannot put the revoked record back after the clear.
 * Cost: O(1) per call.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();
  /** Bumped by clear(): a load that saw another generation stores nothing. */
  private generation = 0;

  /** The fresh cached value, else `load()`'s (stored when found and no clear() ran meanwhile). */
  async getOrLoad(key: K, ttlMs: number, load: () => Promise<V | null>, now = Date.now()): Promise<V | null> {
    const hit = this.get(key, now);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const value = await load();
    if (value !== null && generation === this.generation) this.set(key, value, ttlMs, now);
    return value;
  }

  constructor(private readonly maxEntries: number) {}

  get(key: K, now = Date.now()): V | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    if (hit.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: K, value: V, ttlMs: number, now = Date.now()): void {
    if (ttlMs <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: now + ttlMs });
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
