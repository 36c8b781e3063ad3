import { createRoute, OpenAPIHono, z, type RouteConfig } from "@hono/zod-openapi";
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

/** A route's own part: everything but what its group fixes (method and path are the builder's arguments). */
type RouteSpec = Omit<RouteConfig, "method" | "path" | "tags" | "security" | "middleware">;
type Middleware = MiddlewareHandler<AppEnv>;

/**
 * The route builders of one resource: `group.get(path, spec, middleware?)` (likewise post, put,
 * patch, delete) makes a `createRoute` config with the group's OpenAPI tag and security, the
 * group's auth middleware in front and then the route's own (e.g. a body limit).
 */
function routeGroup(tag: string, security: RouteConfig["security"], guard: Middleware) {
  const builder =
    <const M extends RouteConfig["method"]>(method: M) =>
    <const P extends string, const R extends RouteSpec>(path: P, spec: R, middleware: readonly Middleware[] = []) =>
      createRoute({ method, path, tags: [tag], ...spec, security, middleware: [guard, ...middleware] });
  return { get: builder("get"), post: builder("post"), put: builder("put"), patch: builder("patch"), delete: builder("delete") };
}

/** `/v1` routes of the caller's tenant (tagged `tag`): API-key security in the document, `requireTenant` in front. */
export const tenantRouteGroup = (tag: string) => routeGroup(tag, tenantSecurity, requireTenant);

/** Admin routes (tagged `tag`): admin-token security in the document, `requireAdmin` in front. */
export const adminRouteGroup = (tag: string) => routeGroup(tag, adminSecurity, requireAdmin);

/** `{ "application/json": { schema } }`: a JSON content entry of the document. */
export function jsonContent<const S extends z.ZodType>(schema: S) {
  return { "application/json": { schema } };
}

/** A response of the document whose body is JSON of `schema`. */
export function jsonResponse<const S extends z.ZodType>(description: string, schema: S) {
  return { description, content: jsonContent(schema) };
}

/** A required JSON request body of `schema`. */
export function jsonBody<const S extends z.ZodType>(schema: S) {
  return { required: true, content: jsonContent(schema) };
}

/** The OpenAI list envelope `{ object: "list", data: [item…] }` (more fields: `.extend` it). */
export function listOf<const S extends z.ZodType>(item: S) {
  return z.object({ object: z.literal("list"), data: z.array(item) });
}
