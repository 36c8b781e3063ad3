import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv, AuthTenant, TenantScope } from "../app-env.js";
import { unauthorized } from "../errors/api-error.js";
import { findTenantByKey } from "../tenants/queries.js";
import { bearerToken } from "./bearer.js";

/** Authenticates a tenant API key; sets `c.var.tenant`. 401 for a missing, unknown or revoked key. */
export const requireTenant: MiddlewareHandler<AppEnv> = async function requireTenant(c, next) {
  const key = bearerToken(c.req.header("authorization"));
  const tenant = await findTenantByKey(c.var.db, key);
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
