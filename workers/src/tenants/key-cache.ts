import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import { sha256Hex } from "../util/crypto.js";
import { TtlCache } from "../util/ttl-cache.js";
import { findTenantByKeyHash } from "./queries.js";

/**
 * API key (by its sha256, never the key itself) → tenant, per isolate, so the hot path skips
 * the auth query. Only active keys are stored; an unknown or revoked key always asks D1.
 * Revoking a key or changing a tenant's limits clears this isolate's entries at once; other
 * isolates see it within `ttlMs` (EDGE_CACHE_TTL_MS, default 5 s).
 */
const byKeyHash = new TtlCache<string, AuthTenant>(10_000);

export async function findTenantByKeyCached(db: Db, key: string, ttlMs: number, now = Date.now()): Promise<AuthTenant | null> {
  const keyHash = await sha256Hex(key);
  return byKeyHash.getOrLoad(keyHash, ttlMs, () => findTenantByKeyHash(db, keyHash), now);
}

/** Drops every cached key of this isolate (after a revocation or a limits change here; tests). */
export function forgetCachedTenants(): void {
  byKeyHash.clear();
}
