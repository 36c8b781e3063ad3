import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { modelManifestSchema } from "#core/manifest/model-manifest";
import type { AppEnv } from "../app-env.js";
import { requireTenant, tenantOf } from "../auth/require-tenant.js";
import { notFound } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { resolveModelTarget } from "../inference/resolve-model.js";
import { listModelEntries, MODEL_PAGE_DEFAULT, MODEL_PAGE_MAX, ModelSchema, targetModelEntry } from "../models/model-entries.js";
import { catalogModels, modelCatalog } from "../runners/catalog.js";
import { MAX_REF_CHARS } from "../validation/string-bounds.js";
import { jsonResponse, listOf, newRouter, tenantRouteGroup } from "./router.js";

const ModelWithManifestSchema = ModelSchema.extend({
  manifest: modelManifestSchema.openapi({
    description: "Architecture, sizes, targetable modules (in/out features, unmerged or merge-only), max rank (of the base model)",
  }),
  merge_only_targets: z.array(z.string()),
}).openapi("ModelDetail");

const ListQuery = z.object({
  after: z.string().max(MAX_REF_CHARS).optional().openapi({ description: "Id of the last model of the previous page" }),
  limit: z.coerce.number().int().min(1).max(MODEL_PAGE_MAX).default(MODEL_PAGE_DEFAULT),
});

const route = tenantRouteGroup("models");

const ModelPageSchema = listOf(ModelSchema).extend({
  has_more: z.boolean(),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
});

const listModels = route.get("/v1/models", {
  summary: "Base models served by the healthy runners, the adapters visible to you and your compositions (OpenAI list shape, vLLM's `parent`)",
  description:
    "Order: base models, then your compositions (`composition:<name>`), then adapters (`owner/name@version`). Every id works as `model` in a completion request. Paginate with `after` (the previous page's `last_id`) and `limit`.",
  request: { query: ListQuery },
  responses: { 200: jsonResponse("Models", ModelPageSchema), ...errorResponses(400, 401) },
});

const ModelIdParam = z.object({
  id: z.string().min(1).max(MAX_REF_CHARS).openapi({ description: "Any id of GET /v1/models; `owner/name@version` URL-encoded (`acme%2Fpirate@1.0.0`)" }),
});

const getModel = route.get("/v1/models/{id}", {
  summary: "One model (base, adapter or composition) with its base model's manifest: what adapter authors need to train for it",
  request: { params: ModelIdParam },
  responses: { 200: jsonResponse("Model", ModelWithManifestSchema), ...errorResponses(401, 404) },
});

async function modelDetail(c: Context<AppEnv>, id: string) {
  const catalog = await modelCatalog(c.env, c.var.db);
  const bases = catalogModels(catalog);
  const tenant = tenantOf(c);
  const target = await resolveModelTarget(c.var.db, tenant.id, id, (x) => bases.some((m) => m.id === x));
  const base = bases.find((m) => m.id === target.baseModel);
  const entry = targetModelEntry(target, base, Math.floor(catalog.fetchedAt / 1000), tenant.name);
  if (!entry || !base) throw notFound(`model '${id}' is not served by any healthy runner`);
  return {
    ...entry,
    manifest: base.manifest,
    merge_only_targets: base.manifest.targets.filter((t) => t.mode === "merge-only").map((t) => t.module),
  };
}

export const modelRoutes = newRouter()
  .openapi(listModels, async (c) => {
    const catalog = await modelCatalog(c.env, c.var.db);
    const q = c.req.valid("query");
    const page = await listModelEntries(c.var.db, tenantOf(c), catalogModels(catalog), Math.floor(catalog.fetchedAt / 1000), q);
    return c.json({ object: "list" as const, ...page }, 200);
  })
  .openapi(getModel, async (c) => c.json(await modelDetail(c, c.req.valid("param").id), 200));

// `owner/name@version` not URL-encoded (the documented form encodes the slash).
modelRoutes.get("/v1/models/:owner/:rest", requireTenant, async (c) => c.json(await modelDetail(c, `${c.req.param("owner")}/${c.req.param("rest")}`), 200));
