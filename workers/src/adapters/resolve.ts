import type { Db } from "../db/client.js";
import { forbidden, notFound } from "../errors/api-error.js";
import { findVisibleAdapter, findVisibleAdapterByRef, type AdapterWithOwner } from "./queries.js";
import { parseAdapterRef } from "./refs.js";

/**
 * An adapter by id or `owner/name[@version]`, visible to the tenant. Another tenant's private
 * adapter is reported exactly like a missing one (404), so ids cannot be probed.
 */
export async function resolveAdapter(db: Db, tenantId: string, idOrRef: string): Promise<AdapterWithOwner> {
  const ref = parseAdapterRef(idOrRef);
  const row = ref ? await findVisibleAdapterByRef(db, tenantId, ref) : await findVisibleAdapter(db, tenantId, idOrRef);
  if (!row) throw notFound(`adapter '${idOrRef}' not found`);
  return row;
}

/** Like resolveAdapter, but only the owner passes (others get 404 when private, 403 when public). */
export async function resolveOwnAdapter(db: Db, tenantId: string, idOrRef: string): Promise<AdapterWithOwner> {
  const row = await resolveAdapter(db, tenantId, idOrRef);
  if (row.ownerId !== tenantId) {
    throw forbidden(`adapter '${idOrRef}' belongs to another tenant`);
  }
  return row;
}
