import { and, eq, isNull } from "drizzle-orm";
import type { AuthTenant } from "../app-env.js";
import type { Db } from "../db/client.js";
import { apiKeys, tenants } from "../db/schema.js";
import { newApiKey, newId, sha256Hex } from "../util/crypto.js";

export type TenantRow = typeof tenants.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;

/** The tenant owning the active (unrevoked) key whose hex sha256 is `keyHash`, or null (tenants/key-cache.ts hashes). */
export async function findTenantByKeyHash(db: Db, keyHash: string): Promise<AuthTenant | null> {
  const rows = await db
    .select({
      id: tenants.id,
      name: tenants.name,
      rpmLimit: tenants.rpmLimit,
      tokensPerDay: tenants.tokensPerDay,
      keyId: apiKeys.id,
    })
    .from(apiKeys)
    .innerJoin(tenants, eq(apiKeys.tenantId, tenants.id))
    .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)))
    .limit(1);
  return rows[0] ?? null;
}

export async function findTenantByName(db: Db, name: string): Promise<TenantRow | null> {
  const rows = await db.select().from(tenants).where(eq(tenants.name, name)).limit(1);
  return rows[0] ?? null;
}

export interface TenantLimits {
  rpmLimit?: number | null;
  tokensPerDay?: number | null;
}

export async function insertTenant(db: Db, name: string, limits: TenantLimits = {}, now = Date.now()): Promise<TenantRow> {
  const row: TenantRow = {
    id: newId("ten"),
    name,
    rpmLimit: limits.rpmLimit ?? null,
    tokensPerDay: limits.tokensPerDay ?? null,
    createdAt: now,
  };
  await db.insert(tenants).values(row);
  return row;
}

export async function updateTenantLimits(db: Db, id: string, limits: TenantLimits): Promise<TenantRow> {
  const set: Partial<TenantRow> = {};
  if (limits.rpmLimit !== undefined) set.rpmLimit = limits.rpmLimit;
  if (limits.tokensPerDay !== undefined) set.tokensPerDay = limits.tokensPerDay;
  if (Object.keys(set).length) await db.update(tenants).set(set).where(eq(tenants.id, id));
  const rows = await db.select().from(tenants).where(eq(tenants.id, id));
  return rows[0]!;
}

/** Stores `key` (hashed) for the tenant. Returns the row. */
export async function insertApiKey(db: Db, tenantId: string, key: string, now = Date.now()): Promise<ApiKeyRow> {
  const row: ApiKeyRow = {
    id: newId("key"),
    tenantId,
    keyHash: await sha256Hex(key),
    prefix: key.slice(0, 8),
    createdAt: now,
    revokedAt: null,
  };
  await db.insert(apiKeys).values(row);
  return row;
}

/** Creates a random key for the tenant; the plaintext is returned once and never stored. */
export async function createApiKey(db: Db, tenantId: string): Promise<{ row: ApiKeyRow; key: string }> {
  const key = newApiKey();
  return { row: await insertApiKey(db, tenantId, key), key };
}

export async function findApiKeyByPlaintext(db: Db, key: string): Promise<ApiKeyRow | null> {
  const rows = await db
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.keyHash, await sha256Hex(key)))
    .limit(1);
  return rows[0] ?? null;
}

export async function listApiKeys(db: Db, tenantId: string): Promise<ApiKeyRow[]> {
  return db.select().from(apiKeys).where(eq(apiKeys.tenantId, tenantId)).orderBy(apiKeys.createdAt);
}

/** Revokes one of the tenant's keys; false when the tenant has no such key. */
export async function revokeApiKey(db: Db, tenantId: string, keyId: string, now = Date.now()): Promise<ApiKeyRow | null> {
  const rows = await db
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)))
    .returning();
  if (rows[0]) return rows[0];
  const existing = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.id, keyId), eq(apiKeys.tenantId, tenantId)));
  return existing[0] ?? null;
}
