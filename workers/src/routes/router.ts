import { createRoute, OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { requireAdmin } from "../auth/require-admin.js";
import { requireTenant } from "../auth/require-tenant.js";
import { validationHook } from "../errors/validation-hook.js";

/** A route group: OpenAPIHono whose validation failures become 400 `invalid_request_error`. */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

/** OpenAPI security requirement for tenant routes / admin routes. */
export const tenantSecurity = [{ apiKey: [] }];
export const adminSecurity = [{ adminToken: [] }];

/** A route's own part: everything but the shared auth options this file adds. */
type RouteSpec = Omit<RouteConfig, "security" | "middleware">;

/**
 * A `/v1` route of the caller's tenant: API-key security in the document, `requireTenant` in
 * front, then the route's own middleware (e.g. a body limit) if any.
 */
export function tenantRoute<const R extends RouteSpec>(spec: R, middleware: readonly MiddlewareHandler<AppEnv>[] = []) {
  return createRoute({ ...spec, security: tenantSecurity, middleware: [requireTenant, ...middleware] });
}

/** An admin route: admin-token security in the document, `requireAdmin` in front. */
export function adminRoute<const R extends RouteSpec>(spec: R) {
  return createRoute({ ...spec, security: adminSecurity, middleware: [requireAdmin] as const });
}
