import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.js";
import { validationHook } from "../errors/validation-hook.js";

/** A route group: OpenAPIHono whose validation failures become 400 `invalid_request_error`. */
export function newRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

/** OpenAPI security requirement for tenant routes / admin routes. */
export const tenantSecurity = [{ apiKey: [] }];
export const adminSecurity = [{ adminToken: [] }];
