import type { Db } from "../db/client.js";
import { badRequest, conflict } from "../errors/api-error.js";
import { forgetCachedTenants } from "./key-cache.js";
import {
  createApiKey,
  findApiKeyByPlaintext,
  findTenantByName,
  insertApiKey,
  insertTenant,
  updateTenantLimits,
  type ApiKeyRow,
  type TenantLimits,
  type TenantRow,
} from "./queries.js";

/** The admin rules for tenants; routes/tenants.ts only wires these to HTTP. */

/** Creates a tenant with its first API key (shown once); 409 when the name is taken. */
export async function createTenant(db: Db, name: string, limits: TenantLimits): Promise<{ tenant: TenantRow; keyRow: ApiKeyRow; key: string }> {
  if (await findTenantByName(db, name)) throw conflict(`tenant '${name}' already exists`);
  const tenant = await insertTenant(db, name, limits);
  const { row, key } = await createApiKey(db, tenant.id);
  return { tenant, keyRow: row, key };
}

/**
 * Idempotent seeding: creates the tenant or updates the limits given; registers `apiKey` when
 * given (409 when another tenant owns it, 400 when it was revoked; registering it again is a no-op).
 */
export async function upsertTenant(
  db: Db,
  name: string,
  limits: TenantLimits,
  apiKey: string | undefined,
): Promise<{ tenant: TenantRow; created: boolean; keyRegistered: boolean }> {
  let tenant = await findTenantByName(db, name);
  const created = !tenant;
  if (!tenant) tenant = await insertTenant(db, name, limits);
  else if (limits.rpmLimit !== undefined || limits.tokensPerDay !== undefined) {
    tenant = await updateTenantLimits(db, tenant.id, limits);
    forgetCachedTenants(); // the cached key → tenant records carry the limits
  }
  if (apiKey === undefined) return { tenant, created, keyRegistered: false };
  const existing = await findApiKeyByPlaintext(db, apiKey);
  if (existing && existing.tenantId !== tenant.id) throw conflict("api_key is already registered to another tenant");
  if (existing && existing.revokedAt !== null) throw badRequest("api_key was revoked; choose another");
  if (!existing) await insertApiKey(db, tenant.id, apiKey);
  return { tenant, created, keyRegistered: true };
}
