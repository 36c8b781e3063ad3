import type { Db } from "../db/client.js";
import { notFound } from "../errors/api-error.js";
import { TtlCache } from "../util/ttl-cache.js";
import { findVisibleAdapter, findVisibleAdapterByRef, type AdapterWithOwner } from "./queries.js";
import { parseAdapterRef } from "./refs.js";

/**
 * Adapter records as one tenant resolved them (by id or `owner/name[@version]`), per isolate, for
 * the inference path: an adapter's files, base model, rank and scale never change (versions are
 * immutable), so a cached record routes and bounds a mix exactly like a fresh one. What can change
 * is reach: a visibility change, a delete, or a new upload behind `owner/name` (latest) made here
 * clears this isolate's entries at once; other isolates see it within `ttlMs` (EDGE_CACHE_TTL_MS).
 * Only found records are stored (a new upload is usable at once everywhere). The counters of a
 * cached record (downloads, uses) are stale: this is not for answers that show a record.
 */
const byTenantRef = new TtlCache<string, AdapterWithOwner>(10_000);

/** An adapter visible to the tenant (resolveAdapter's rule), from this isolate's cache when fresh; null when none. */
export async function findVisibleAdapterCached(
  db: Db,
  tenantId: string,
  idOrRef: string,
  ttlMs: number,
  now = Date.now(),
): Promise<AdapterWithOwner | null> {
  const key = `${tenantId}\n${idOrRef}`;
  const ref = parseAdapterRef(idOrRef);
  return byTenantRef.getOrLoad(key, ttlMs, () => (ref ? findVisibleAdapterByRef(db, tenantId, ref) : findVisibleAdapter(db, tenantId, idOrRef)), now);
}

/** Like resolveAdapter (404 when not visible), through this isolate's cache. */
export async function resolveAdapterCached(db: Db, tenantId: string, idOrRef: string, ttlMs: number): Promise<AdapterWithOwner> {
  const row = await findVisibleAdapterCached(db, tenantId, idOrRef, ttlMs);
  if (!row) throw notFound(`adapter '${idOrRef}' not found`);
  return row;
}

/** Drops every cached record of this isolate (after an upload, patch or delete here; tests). */
export function forgetCachedAdapters(): void {
  byTenantRef.clear();
}
