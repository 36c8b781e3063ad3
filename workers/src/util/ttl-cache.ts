/**
 * A small per-isolate cache whose entries expire a given time after they were stored.
 *
 * Semantics: `get(k, now)` returns the value stored under k at most its `ttlMs` before `now`,
 * else undefined; `set` with ttlMs ≤ 0 stores nothing (caching off). At most `maxEntries` are
 * kept: storing a new key beyond that drops the oldest stored one (Map insertion order).
 * Only found records should be stored (a miss is never cached, so a new row is seen at once).
 * Cost: O(1) per call.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, { value: V; expiresAt: number }>();

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
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
