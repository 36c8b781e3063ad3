import { z } from "@hono/zod-openapi";
import { STRATEGY_NAMES } from "#core/bake/index";
import { AdapterSchema, adapterJson } from "../adapters/record.js";
import { ADAPTER_NAME_RE, ADAPTER_NAME_RULE, MAX_VERSION_CHARS, SEMVER_RE, VERSION_RULE } from "../adapters/refs.js";
import { tenantOf, tenantScope } from "../auth/require-tenant.js";
import { bakeIntoRegistry, ownComposition, removeComposition, saveComposition } from "../compositions/composition-service.js";
import { listOwnCompositions } from "../compositions/queries.js";
import { CompositionSchema, compositionJson } from "../compositions/record.js";
import { errorResponses } from "../errors/error-schema.js";
import { MixEntrySchema } from "../inference/resolve-mix.js";
import { MAX_DESCRIPTION_CHARS, MAX_REF_CHARS, MAX_TAGS_FIELD_CHARS } from "../validation/string-bounds.js";
import { jsonBody, jsonResponse, listOf, newRouter, tenantRouteGroup } from "./router.js";

const IdParam = z.object({ id: z.string().min(1).max(MAX_REF_CHARS).openapi({ description: "Composition id or name" }) });

const route = tenantRouteGroup("compositions");

const CreateSchema = z.object({
  name: z.string().regex(ADAPTER_NAME_RE, ADAPTER_NAME_RULE),
  adapters: z.array(MixEntrySchema).min(1),
});

const createComposition = route.post("/v1/compositions", {
  summary: "Save a named mix of adapters (same base model, all visible to the caller)",
  request: { body: jsonBody(CreateSchema) },
  responses: { 201: jsonResponse("Saved", CompositionSchema), ...errorResponses(400, 401, 404, 409, 422) },
});

const listCompositions = route.get("/v1/compositions", {
  summary: "The caller's compositions",
  responses: { 200: jsonResponse("Compositions", listOf(CompositionSchema)), ...errorResponses(401) },
});

const getComposition = route.get("/v1/compositions/{id}", {
  summary: "One of the caller's compositions",
  request: { params: IdParam },
  responses: { 200: jsonResponse("Composition", CompositionSchema), ...errorResponses(401, 404) },
});

const deleteCompositionRoute = route.delete("/v1/compositions/{id}", {
  summary: "Delete one of the caller's compositions",
  request: { params: IdParam },
  responses: { 200: jsonResponse("Deleted", z.object({ id: z.string(), deleted: z.literal(true) })), ...errorResponses(401, 404) },
});

const BakeRequestSchema = z
  .object({
    strategy: z.enum(STRATEGY_NAMES as unknown as [string, ...string[]]),
    density: z.number().gt(0).max(1).optional(),
    rank: z.number().int().min(1).optional(),
    seed: z.number().int().min(0).optional(),
    name: z.string().regex(ADAPTER_NAME_RE, ADAPTER_NAME_RULE),
    version: z.string().max(MAX_VERSION_CHARS, VERSION_RULE).regex(SEMVER_RE, VERSION_RULE).default("1.0.0"),
    visibility: z.enum(["private", "public"]).default("private"),
    description: z.string().max(MAX_DESCRIPTION_CHARS).optional(),
    tags: z.string().max(MAX_TAGS_FIELD_CHARS).optional(),
  })
  .openapi("BakeRequest");

const bakeRoute = route.post("/v1/compositions/{id}/bake", {
  summary: "Bake the composition into a new adapter in the registry (core's bake, run on a runner, with a fidelity report)",
  description:
    "Strategies: linear (exact Σ wᵢ·sᵢ·Bᵢ·Aᵢ, truncated by SVD), svd, ties, dare_linear, dare_ties, magnitude_prune (dense ΔW merges, then truncated SVD). `density` is required by ties/dare_*/magnitude_prune; `seed` only by dare_*.",
  request: { params: IdParam, body: jsonBody(BakeRequestSchema) },
  responses: {
    201: jsonResponse(
      "The baked adapter; its `bake` field holds the SVD truncation report and the fidelity to the exact mix measured on the base model (KL divergence, top-1 agreement on a fixed probe set), stored with the adapter",
      AdapterSchema,
    ),
    ...errorResponses(400, 401, 404, 409, 422, 429, 502, 503),
  },
});

export const compositionRoutes = newRouter()
  .openapi(createComposition, async (c) => {
    const body = c.req.valid("json");
    const row = await saveComposition(tenantScope(c), body.name, body.adapters);
    return c.json(compositionJson(row), 201);
  })
  .openapi(listCompositions, async (c) => {
    const rows = await listOwnCompositions(c.var.db, tenantOf(c).id);
    return c.json({ object: "list" as const, data: rows.map(compositionJson) }, 200);
  })
  .openapi(getComposition, async (c) => {
    const row = await ownComposition(tenantScope(c), c.req.valid("param").id);
    return c.json(compositionJson(row), 200);
  })
  .openapi(deleteCompositionRoute, async (c) => {
    const row = await removeComposition(tenantScope(c), c.req.valid("param").id);
    return c.json({ id: row.id, deleted: true as const }, 200);
  })
  .openapi(bakeRoute, async (c) => {
    const body = c.req.valid("json");
    const { row } = await bakeIntoRegistry(tenantScope(c), c.req.valid("param").id, body, c.get("requestId"));
    return c.json(adapterJson(row), 201);
  });
