import { z } from "@hono/zod-openapi";
import { modelManifestSchema } from "#core/manifest/model-manifest";
import { notFound } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { catalogModels, modelCatalog, type CatalogModel } from "../runners/catalog.js";
import { newRouter, tenantRoute } from "./router.js";

const ModelSchema = z
  .object({
    id: z.string().openapi({ example: "loraedge-tiny" }),
    object: z.literal("model"),
    created: z.number().int(),
    owned_by: z.string(),
  })
  .openapi("Model");

const ModelWithManifestSchema = ModelSchema.extend({
  manifest: modelManifestSchema.openapi({
    description: "Architecture, sizes, targetable modules (in/out features, unmerged or merge-only), max rank",
  }),
  merge_only_targets: z.array(z.string()),
}).openapi("ModelDetail");

const listModels = tenantRoute({
  method: "get",
  path: "/v1/models",
  tags: ["models"],
  summary: "Base models served by the healthy runners (OpenAI list shape)",
  responses: {
    200: {
      description: "Models",
      content: { "application/json": { schema: z.object({ object: z.literal("list"), data: z.array(ModelSchema) }) } },
    },
    ...errorResponses(401),
  },
});

const getModel = tenantRoute({
  method: "get",
  path: "/v1/models/{id}",
  tags: ["models"],
  summary: "One base model with its manifest: what adapter authors need to train for it",
  request: { params: z.object({ id: z.string().min(1) }) },
  responses: {
    200: { description: "Model", content: { "application/json": { schema: ModelWithManifestSchema } } },
    ...errorResponses(401, 404),
  },
});

const modelJson = (m: CatalogModel, fetchedAt: number) => ({
  id: m.id,
  object: "model" as const,
  created: Math.floor(fetchedAt / 1000),
  owned_by: m.owned_by,
});

export const modelRoutes = newRouter()
  .openapi(listModels, async (c) => {
    const catalog = await modelCatalog(c.env, c.var.db);
    return c.json({ object: "list" as const, data: catalogModels(catalog).map((m) => modelJson(m, catalog.fetchedAt)) }, 200);
  })
  .openapi(getModel, async (c) => {
    const catalog = await modelCatalog(c.env, c.var.db);
    const id = c.req.valid("param").id;
    const m = catalogModels(catalog).find((x) => x.id === id);
    if (!m) throw notFound(`model '${id}' is not served by any healthy runner`);
    return c.json(
      {
        ...modelJson(m, catalog.fetchedAt),
        manifest: m.manifest,
        merge_only_targets: m.manifest.targets.filter((t) => t.mode === "merge-only").map((t) => t.module),
      },
      200,
    );
  });
