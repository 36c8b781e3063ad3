import type { Context, MiddlewareHandler } from "hono";
import { wrapTime } from "hono/timing";
import type { AppEnv, AuthTenant, TenantScope } from "../app-env.js";
import { unauthorized } from "../errors/api-error.js";
import { edgeCacheTtlMs } from "../limits/config.js";
import { findTenantByKeyCached } from "../tenants/key-cache.js";
import { bearerToken } from "./bearer.js";

/**
 * Authenticates a tenant API key; sets `c.var.tenant`. 401 for a missing, unknown or revoked key.
 * A key found active is remembered by this isolate for EDGE_CACHE_TTL_MS (tenants/key-cache.ts):
 * a revocation elsewhere takes effect here within that time.
 */
export const requireTenant: MiddlewareHandler<AppEnv> = async function requireTenant(c, next) {
  const key = bearerToken(c.req.header("authorization"));
  const tenant = await wrapTime(c, "auth", findTenantByKeyCached(c.var.db, key, edgeCacheTtlMs(c.env)));
  if (!tenant) throw unauthorized("invalid or revoked API key");
  c.set("tenant", tenant);
  await next();
};

/** The authenticated tenant (only inside routes behind requireTenant). */
export function tenantOf(c: { get(key: "tenant"): AuthTenant | undefined }): AuthTenant {
  const t = c.get("tenant");
  if (!t) throw unauthorized("authentication required");
  return t;
}

/** The request as a service sees it (only inside routes behind requireTenant). */
export function tenantScope(c: Context<AppEnv>): TenantScope {
  return { env: c.env, db: c.var.db, tenant: tenantOf(c), requestId: c.var.requestId };
}
