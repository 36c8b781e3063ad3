import { createRoute, z } from "@hono/zod-openapi";
import { requireAdmin } from "../auth/require-admin.js";
import { badRequest, conflict } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import {
  createApiKey,
  findApiKeyByPlaintext,
  findTenantByName,
  insertApiKey,
  insertTenant,
  updateTenantLimits,
  type TenantRow,
} from "../tenants/queries.js";
import { isoTime } from "../util/time.js";
import { adminSecurity, newRouter } from "./router.js";

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

const createTenant = createRoute({
  method: "post",
  path: "/v1/tenants",
  tags: ["tenants"],
  summary: "Create a tenant and its first API key (admin)",
  security: adminSecurity,
  middleware: [requireAdmin] as const,
  request: {
    body: {
      required: true,
      content: { "application/json": { schema: z.object({ name: TenantNameSchema, ...limitFields }) } },
    },
  },
  responses: {
    201: {
      description: "Created; `api_key.key` is shown only here",
      content: { "application/json": { schema: TenantSchema.extend({ api_key: CreatedKeySchema }) } },
    },
    ...errorResponses(400, 401, 403, 409),
  },
});

const upsertTenant = createRoute({
  method: "put",
  path: "/v1/tenants/{name}",
  tags: ["tenants"],
  summary: "Idempotent upsert of a tenant, optionally registering a given API key (admin; used for dev seeding)",
  security: adminSecurity,
  middleware: [requireAdmin] as const,
  request: {
    params: z.object({ name: TenantNameSchema }),
    body: {
      required: false,
      content: {
        "application/json": {
          schema: z.object({
            api_key: z
              .string()
              .min(16, "api_key must be at least 16 characters")
              .max(256)
              .regex(/^\S+$/, "api_key must not contain whitespace")
              .optional(),
            ...limitFields,
          }),
        },
      },
    },
  },
  responses: {
    200: {
      description: "Tenant existed",
      content: { "application/json": { schema: TenantSchema.extend({ api_key_registered: z.boolean() }) } },
    },
    201: {
      description: "Tenant created",
      content: { "application/json": { schema: TenantSchema.extend({ api_key_registered: z.boolean() }) } },
    },
    ...errorResponses(400, 401, 403, 409),
  },
});

export const tenantRoutes = newRouter()
  .openapi(createTenant, async (c) => {
    const db = c.var.db;
    const body = c.req.valid("json");
    if (await findTenantByName(db, body.name)) throw conflict(`tenant '${body.name}' already exists`);
    const tenant = await insertTenant(db, body.name, { rpmLimit: body.rpm_limit, tokensPerDay: body.tokens_per_day });
    const { row, key } = await createApiKey(db, tenant.id);
    return c.json(
      { ...tenantJson(tenant), api_key: { id: row.id, key, prefix: row.prefix, created_at: isoTime(row.createdAt) } },
      201,
    );
  })
  .openapi(upsertTenant, async (c) => {
    const db = c.var.db;
    const { name } = c.req.valid("param");
    // The body is optional: no body means `{}`.
    const body = c.req.valid("json") ?? {};
    let tenant = await findTenantByName(db, name);
    const created = !tenant;
    if (!tenant) tenant = await insertTenant(db, name, { rpmLimit: body.rpm_limit, tokensPerDay: body.tokens_per_day });
    else if (body.rpm_limit !== undefined || body.tokens_per_day !== undefined) {
      tenant = await updateTenantLimits(db, tenant.id, { rpmLimit: body.rpm_limit, tokensPerDay: body.tokens_per_day });
    }
    let registered = false;
    if (body.api_key !== undefined) {
      const existing = await findApiKeyByPlaintext(db, body.api_key);
      if (existing && existing.tenantId !== tenant.id) throw conflict("api_key is already registered to another tenant");
      if (existing && existing.revokedAt !== null) throw badRequest("api_key was revoked; choose another");
      if (!existing) await insertApiKey(db, tenant.id, body.api_key);
      registered = true;
    }
    return c.json({ ...tenantJson(tenant), api_key_registered: registered }, created ? 201 : 200);
  });
