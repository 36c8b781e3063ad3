import { createRoute, z } from "@hono/zod-openapi";
import { STRATEGY_NAMES, type StrategyName } from "#core/bake/index";
import { AdapterSchema, adapterJson } from "../adapters/record.js";
import { ADAPTER_NAME_RE, ADAPTER_NAME_RULE, MAX_VERSION_CHARS, SEMVER_RE, VERSION_RULE, parseTags } from "../adapters/refs.js";
import { MIX_WEIGHT_LIMIT } from "#core/wire/mix-bounds";
import { MAX_DESCRIPTION_CHARS, MAX_REF_CHARS, MAX_TAGS_FIELD_CHARS } from "../validation/string-bounds.js";
import { storeAdapter } from "../adapters/store.js";
import { adapterVersionExists } from "../adapters/queries.js";
import { validateAdapterFiles } from "../adapters/validate.js";
import { bakeComposition } from "../compositions/bake-composition.js";
import { findManifest } from "../runners/catalog.js";
import { uploadLimits } from "../limits/config.js";
import { requireTenant, tenantOf } from "../auth/require-tenant.js";
import {
  compositionNameExists,
  deleteComposition,
  findOwnComposition,
  insertComposition,
  listOwnCompositions,
  type CompositionWithEntries,
} from "../compositions/queries.js";
import { badRequest, conflict, notFound, unprocessable } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { resolveMix } from "../inference/resolve-mix.js";
import { bakeLimits, maxMixAdapters } from "../limits/config.js";
import { isoTime } from "../util/time.js";
import { newRouter, tenantSecurity } from "./router.js";

export const MixEntrySchema = z
  .object({
    id: z.string().min(1).max(MAX_REF_CHARS).openapi({ description: "Adapter id or `owner/name@version`", example: "acme/pirate@1.0.0" }),
    weight: z
      .number()
      .finite()
      .min(-MIX_WEIGHT_LIMIT)
      .max(MIX_WEIGHT_LIMIT)
      .openapi({
        description: `wᵢ in ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ: |wᵢ| ≤ ${MIX_WEIGHT_LIMIT}, and Σ|wᵢ·sᵢ| over the adapters touching one module ≤ 1e5 (sᵢ: the adapter's scale)`,
        example: 1,
      }),
  })
  .openapi("MixEntry");

export const CompositionSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    base_model: z.string(),
    adapters: z.array(z.object({ id: z.string(), ref: z.string(), weight: z.number() })),
    created_at: z.string(),
  })
  .openapi("Composition");

export function compositionJson(c: CompositionWithEntries) {
  return {
    id: c.id,
    name: c.name,
    base_model: c.baseModel,
    adapters: c.entries.map((e) => ({ id: e.adapterId, ref: e.ref, weight: e.weight })),
    created_at: isoTime(c.createdAt),
  };
}

const IdParam = z.object({ id: z.string().min(1).max(MAX_REF_CHARS).openapi({ description: "Composition id or name" }) });

const createComposition = createRoute({
  method: "post",
  path: "/v1/compositions",
  tags: ["compositions"],
  summary: "Save a named mix of adapters (same base model, all visible to the caller)",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({
            name: z.string().regex(ADAPTER_NAME_RE, ADAPTER_NAME_RULE),
            adapters: z.array(MixEntrySchema).min(1),
          }),
        },
      },
    },
  },
  responses: {
    201: { description: "Saved", content: { "application/json": { schema: CompositionSchema } } },
    ...errorResponses(400, 401, 404, 409, 422),
  },
});

const listCompositions = createRoute({
  method: "get",
  path: "/v1/compositions",
  tags: ["compositions"],
  summary: "The caller's compositions",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  responses: {
    200: {
      description: "Compositions",
      content: { "application/json": { schema: z.object({ object: z.literal("list"), data: z.array(CompositionSchema) }) } },
    },
    ...errorResponses(401),
  },
});

const getComposition = createRoute({
  method: "get",
  path: "/v1/compositions/{id}",
  tags: ["compositions"],
  summary: "One of the caller's compositions",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { params: IdParam },
  responses: {
    200: { description: "Composition", content: { "application/json": { schema: CompositionSchema } } },
    ...errorResponses(401, 404),
  },
});

const deleteCompositionRoute = createRoute({
  method: "delete",
  path: "/v1/compositions/{id}",
  tags: ["compositions"],
  summary: "Delete one of the caller's compositions",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { params: IdParam },
  responses: {
    200: {
      description: "Deleted",
      content: { "application/json": { schema: z.object({ id: z.string(), deleted: z.literal(true) }) } },
    },
    ...errorResponses(401, 404),
  },
});

const bakeRoute = createRoute({
  method: "post",
  path: "/v1/compositions/{id}/bake",
  tags: ["compositions"],
  summary: "Bake the composition into a new adapter in the registry (core's bake, run in the worker)",
  description:
    "Strategies: linear (exact Σ wᵢ·sᵢ·Bᵢ·Aᵢ, truncated by SVD), svd, ties, dare_linear, dare_ties, magnitude_prune (dense ΔW merges, then truncated SVD). `density` is required by ties/dare_*/magnitude_prune; `seed` only by dare_*.",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: {
    params: IdParam,
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z
            .object({
              strategy: z.enum(STRATEGY_NAMES as unknown as [StrategyName, ...StrategyName[]]),
              density: z.number().gt(0).max(1).optional(),
              rank: z.number().int().min(1).optional(),
              seed: z.number().int().min(0).optional(),
              name: z.string().regex(ADAPTER_NAME_RE, ADAPTER_NAME_RULE),
              version: z.string().max(MAX_VERSION_CHARS, VERSION_RULE).regex(SEMVER_RE, VERSION_RULE).default("1.0.0"),
              visibility: z.enum(["private", "public"]).default("private"),
              description: z.string().max(MAX_DESCRIPTION_CHARS).optional(),
              tags: z.string().max(MAX_TAGS_FIELD_CHARS).optional(),
            })
            .openapi("BakeRequest"),
        },
      },
    },
  },
  responses: {
    201: {
      description: "The baked adapter, plus the SVD truncation report",
      content: {
        "application/json": {
          schema: AdapterSchema.extend({
            bake: z.object({
              strategy: z.string(),
              total_discarded_energy: z.number(),
              per_module: z.array(z.object({ module: z.string(), rank: z.number().int(), discarded_energy: z.number() })),
            }),
          }),
        },
      },
    },
    ...errorResponses(400, 401, 404, 409, 422, 503),
  },
});

export const compositionRoutes = newRouter()
  .openapi(createComposition, async (c) => {
    const db = c.var.db;
    const tenant = tenantOf(c);
    const body = c.req.valid("json");
    if (body.adapters.length > maxMixAdapters(c.env)) {
      throw badRequest(`a composition may hold at most ${maxMixAdapters(c.env)} adapters`);
    }
    const mix = await resolveMix(db, tenant.id, null, body.adapters, maxMixAdapters(c.env));
    if (await compositionNameExists(db, tenant.id, body.name)) throw conflict(`composition '${body.name}' already exists`);
    const baseModel = mix.adapters[0]!.baseModel;
    const row = await insertComposition(db, {
      ownerId: tenant.id,
      name: body.name,
      baseModel,
      entries: mix.wire.map((w) => ({ adapterId: w.id, weight: w.weight })),
    });
    const entries = mix.adapters.map((a, i) => ({
      adapterId: a.id,
      ref: `${a.ownerName}/${a.name}@${a.version}`,
      weight: mix.wire[i]!.weight,
    }));
    return c.json(compositionJson({ ...row, entries }), 201);
  })
  .openapi(listCompositions, async (c) => {
    const rows = await listOwnCompositions(c.var.db, tenantOf(c).id);
    return c.json({ object: "list" as const, data: rows.map(compositionJson) }, 200);
  })
  .openapi(getComposition, async (c) => {
    const id = c.req.valid("param").id;
    const row = await findOwnComposition(c.var.db, tenantOf(c).id, id);
    if (!row) throw notFound(`composition '${id}' not found`);
    return c.json(compositionJson(row), 200);
  })
  .openapi(deleteCompositionRoute, async (c) => {
    const id = c.req.valid("param").id;
    const row = await findOwnComposition(c.var.db, tenantOf(c).id, id);
    if (!row) throw notFound(`composition '${id}' not found`);
    await deleteComposition(c.var.db, row.id);
    return c.json({ id: row.id, deleted: true as const }, 200);
  })
  .openapi(bakeRoute, async (c) => {
    const db = c.var.db;
    const tenant = tenantOf(c);
    const id = c.req.valid("param").id;
    const body = c.req.valid("json");
    const comp = await findOwnComposition(db, tenant.id, id);
    if (!comp) throw notFound(`composition '${id}' not found`);
    let tags: string[];
    try {
      tags = parseTags(body.tags ?? "baked");
    } catch (e) {
      throw badRequest((e as Error).message);
    }
    if (await adapterVersionExists(db, tenant.id, body.name, body.version)) {
      throw conflict(`adapter ${tenant.name}/${body.name}@${body.version} already exists (versions are immutable)`);
    }
    const manifest = await findManifest(c.env, db, comp.baseModel);
    if (!manifest) throw unprocessable(`base model '${comp.baseModel}' is not served by any runner`);
    const limits = uploadLimits(c.env);
    const baked = await bakeComposition(
      db,
      c.env.ADAPTERS,
      tenant.id,
      comp,
      { strategy: body.strategy, density: body.density, rank: body.rank, seed: body.seed },
      manifest,
      limits.maxRank,
      bakeLimits(c.env),
    );
    // The baked files go through the same validation as an upload.
    const { summary } = validateAdapterFiles(JSON.parse(baked.configJson), baked.weights, manifest, limits.maxRank);
    const scale = summary.scale ?? summary.scales[summary.scales.length - 1] ?? 1;
    const row = await storeAdapter(db, c.env.ADAPTERS, tenant, {
      name: body.name,
      version: body.version,
      baseModel: comp.baseModel,
      visibility: body.visibility,
      description:
        body.description ?? `Baked from composition '${comp.name}' (${comp.entries.map((e) => `${e.weight}×${e.ref}`).join(" + ")}) with ${body.strategy}`,
      tags,
      rank: summary.rank,
      alpha: summary.alpha ?? scale * summary.rank,
      scale,
      targets: summary.targets,
      dtype: summary.dtype ?? "F32",
      configJson: baked.configJson,
      weights: baked.weights,
    });
    return c.json(
      {
        ...adapterJson(row),
        bake: {
          strategy: body.strategy,
          total_discarded_energy: baked.report.totalDiscardedEnergy,
          per_module: baked.report.perModule.map((m) => ({ module: m.module, rank: m.rank, discarded_energy: m.discardedEnergy })),
        },
      },
      201,
    );
  });
