import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env.js";
import { forbidden } from "../errors/api-error.js";
import { timingSafeEqualStrings } from "../util/crypto.js";
import { bearerToken } from "./bearer.js";

/** Admin calls carry `Authorization: Bearer <ADMIN_TOKEN>`; 401 without a token, 403 with a wrong one. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async function requireAdmin(c, next) {
  const token = bearerToken(c.req.header("authorization"));
  const expected = c.env.ADMIN_TOKEN;
  if (!expected) throw forbidden("admin API disabled: ADMIN_TOKEN is not configured");
  if (!(await timingSafeEqualStrings(token, expected))) throw forbidden("admin token required");
  await next();
};

