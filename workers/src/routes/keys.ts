import { z } from "@hono/zod-openapi";
import { tenantOf } from "../auth/require-tenant.js";
import { notFound } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { forgetCachedTenants } from "../tenants/key-cache.js";
import { createApiKey, listApiKeys, revokeApiKey } from "../tenants/queries.js";
import { isoTime } from "../util/time.js";
import { jsonResponse, listOf, newRouter, tenantRouteGroup } from "./router.js";

const KeySchema = z
  .object({
    id: z.string(),
    prefix: z.string(),
    created_at: z.string(),
    revoked_at: z.string().nullable(),
  })
  .openapi("ApiKey");

const route = tenantRouteGroup("keys");

const createKey = route.post("/v1/keys", {
  summary: "Create another API key for the caller's tenant (shown once)",
  responses: { 201: jsonResponse("Created", KeySchema.extend({ key: z.string() })), ...errorResponses(401) },
});

const listKeys = route.get("/v1/keys", {
  summary: "List the caller's API keys (prefixes only)",
  responses: { 200: jsonResponse("Keys", listOf(KeySchema)), ...errorResponses(401) },
});

const deleteKey = route.delete("/v1/keys/{id}", {
  summary: "Revoke one of the caller's API keys",
  request: { params: z.object({ id: z.string() }) },
  responses: { 200: jsonResponse("Revoked", KeySchema), ...errorResponses(401, 404) },
});

const keyJson = (k: { id: string; prefix: string; createdAt: number; revokedAt: number | null }) => ({
  id: k.id,
  prefix: k.prefix,
  created_at: isoTime(k.createdAt),
  revoked_at: k.revokedAt === null ? null : isoTime(k.revokedAt),
});

export const keyRoutes = newRouter()
  .openapi(createKey, async (c) => {
    const { row, key } = await createApiKey(c.var.db, tenantOf(c).id);
    return c.json({ ...keyJson(row), key }, 201);
  })
  .openapi(listKeys, async (c) => {
    const rows = await listApiKeys(c.var.db, tenantOf(c).id);
    return c.json({ object: "list" as const, data: rows.map(keyJson) }, 200);
  })
  .openapi(deleteKey, async (c) => {
    const row = await revokeApiKey(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    if (!row) throw notFound("API key not found");
    forgetCachedTenants(); // this isolate at once; others within EDGE_CACHE_TTL_MS
    return c.json(keyJson(row), 200);
  });
