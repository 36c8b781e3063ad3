import { z } from "@hono/zod-openapi";
import { errorResponses } from "../errors/error-schema.js";
import type { TenantRow } from "../tenants/queries.js";
import { createTenant, upsertTenant } from "../tenants/tenant-service.js";
import { isoTime } from "../util/time.js";
import { adminRouteGroup, jsonBody, jsonContent, jsonResponse, newRouter } from "./router.js";

export const TenantNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "lowercase letters, digits, '-' and '_' (1-63 chars, starting alphanumeric)")
  .openapi({ example: "acme" });

const limitFields = {
  rpm_limit: z.number().int().positive().nullable().optional().openapi({ description: "Requests per minute (null: default)" }),
  tokens_per_day: z
    .number()
    .int()
    .positive()
    .nullable()
    .optional()
    .openapi({ description: "Prompt+completion tokens per UTC day (null: default)" }),
};

const TenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    rpm_limit: z.number().int().nullable(),
    tokens_per_day: z.number().int().nullable(),
    created_at: z.string(),
  })
  .openapi("Tenant");

const CreatedKeySchema = z
  .object({
    id: z.string(),
    key: z.string().openapi({ description: "The API key. Shown only once; only its hash is stored." }),
    prefix: z.string(),
    created_at: z.string(),
  })
  .openapi("CreatedApiKey");

function tenantJson(t: TenantRow) {
  return { id: t.id, name: t.name, rpm_limit: t.rpmLimit, tokens_per_day: t.tokensPerDay, created_at: isoTime(t.createdAt) };
}

const route = adminRouteGroup("tenants");

const createTenantRoute = route.post("/v1/tenants", {
  summary: "Create a tenant and its first API key (admin)",
  request: { body: jsonBody(z.object({ name: TenantNameSchema, ...limitFields })) },
  responses: {
    201: jsonResponse("Created; `api_key.key` is shown only here", TenantSchema.extend({ api_key: CreatedKeySchema })),
    ...errorResponses(400, 401, 403, 409),
  },
});

const UpsertSchema = z.object({
  api_key: z
    .string()
    .min(16, "api_key must be at least 16 characters")
    .max(256)
    .regex(/^\S+$/, "api_key must not contain whitespace")
    .optional(),
  ...limitFields,
});
const UpsertedSchema = TenantSchema.extend({ api_key_registered: z.boolean() });

const upsertTenantRoute = route.put("/v1/tenants/{name}", {
  summary: "Idempotent upsert of a tenant, optionally registering a given API key (admin; used for dev seeding)",
  request: {
    params: z.object({ name: TenantNameSchema }),
    body: { required: false, content: jsonContent(UpsertSchema) },
  },
  responses: {
    200: jsonResponse("Tenant existed", UpsertedSchema),
    201: jsonResponse("Tenant created", UpsertedSchema),
    ...errorResponses(400, 401, 403, 409),
  },
});

const limitsOf = (b: { rpm_limit?: number | null; tokens_per_day?: number | null }) => ({
  rpmLimit: b.rpm_limit,
  tokensPerDay: b.tokens_per_day,
});

export const tenantRoutes = newRouter()
  .openapi(createTenantRoute, async (c) => {
    const body = c.req.valid("json");
    const { tenant, keyRow, key } = await createTenant(c.var.db, body.name, limitsOf(body));
    return c.json(
      { ...tenantJson(tenant), api_key: { id: keyRow.id, key, prefix: keyRow.prefix, created_at: isoTime(keyRow.createdAt) } },
      201,
    );
  })
  .openapi(upsertTenantRoute, async (c) => {
    // The body is optional: no body means `{}`.
    const body = c.req.valid("json") ?? {};
    const { tenant, created, keyRegistered } = await upsertTenant(c.var.db, c.req.valid("param").name, limitsOf(body), body.api_key);
    return c.json({ ...tenantJson(tenant), api_key_registered: keyRegistered }, created ? 201 : 200);
  });
