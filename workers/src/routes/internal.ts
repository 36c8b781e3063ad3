import { Hono } from "hono";
import { SHA256_HEADER } from "#core/wire/runner-api";
import { findAdapterById } from "../adapters/queries.js";
import type { AppEnv } from "../app-env.js";
import { requireRunner } from "../auth/require-runner.js";
import { notFound, serviceUnavailable } from "../errors/api-error.js";

/**
 * Routes the runners call (HMAC-signed with RUNNER_SECRET; see core/src/wire/runner-api.ts):
 * the adapter files of any registry id, regardless of visibility (the edge already checked
 * the caller may use the adapter before naming it in a runner request).
 */
export const internalRoutes = new Hono<AppEnv>();

internalRoutes.get("/internal/adapters/:id/blob", requireRunner, async (c) => {
  const row = await findAdapterById(c.var.db, c.req.param("id"));
  if (!row) throw notFound("adapter not found");
  const object = await c.env.ADAPTERS.get(row.r2Key);
  if (!object) throw serviceUnavailable(`blob of adapter '${row.id}' is missing from storage`);
  return new Response(object.body, {
    headers: {
      "content-type": "application/octet-stream",
      "content-length": String(object.size),
      [SHA256_HEADER]: row.sha256,
    },
  });
});

internalRoutes.get("/internal/adapters/:id/config", requireRunner, async (c) => {
  const row = await findAdapterById(c.var.db, c.req.param("id"));
  if (!row) throw notFound("adapter not found");
  return new Response(row.configJson, { headers: { "content-type": "application/json", [SHA256_HEADER]: row.sha256 } });
});
