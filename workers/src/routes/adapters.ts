import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AdapterSchema, adapterJson } from "../adapters/record.js";
import { deleteBlobIfUnreferenced } from "../adapters/blob-store.js";
import { decodeCursor, encodeCursor } from "../adapters/cursor.js";
import { log } from "../logging/index.js";
import { compositionsUsing, deleteAdapterRow, incrementDownloads, listAdapters, updateAdapter } from "../adapters/queries.js";
import { encodeTags, parseTags, TAG_RE } from "../adapters/refs.js";
import { resolveAdapter, resolveOwnAdapter } from "../adapters/resolve.js";
import { storeAdapter } from "../adapters/store.js";
import { CONFIG_PART, maxUploadBodyBytes, readUploadForm, WEIGHTS_PART } from "../adapters/upload-form.js";
import { validateAdapterFiles } from "../adapters/validate.js";
import type { AppEnv } from "../app-env.js";
import { requireTenant, tenantOf } from "../auth/require-tenant.js";
import { badRequest, conflict, payloadTooLarge, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { uploadLimits } from "../limits/config.js";
import { findManifest } from "../runners/catalog.js";
import { SHA256_HEADER } from "#core/wire/runner-api";
import { newRouter, tenantSecurity } from "./router.js";
import { MAX_CURSOR_CHARS, MAX_DESCRIPTION_CHARS, MAX_MODEL_ID_CHARS, MAX_REF_CHARS, MAX_TAGS_FIELD_CHARS } from "../validation/string-bounds.js";

const IdParam = z.object({
  id: z.string().min(1).max(MAX_REF_CHARS).openapi({
    param: { name: "id", in: "path" },
    description: "Adapter id, or `owner/name@version` URL-encoded (`acme%2Fpirate@1.0.0`; without @version: the latest)",
    example: "ad_3f2a9c0b1d4e5f607182",
  }),
});

const UploadFormSchema = z
  .object({
    [CONFIG_PART]: z.string().openapi({ type: "string", format: "binary", description: "PEFT adapter_config.json" }),
    [WEIGHTS_PART]: z.string().openapi({ type: "string", format: "binary", description: "PEFT adapter_model.safetensors" }),
    name: z.string().openapi({ example: "pirate-speak" }),
    base_model: z.string().openapi({ example: "loraedge-tiny" }),
    version: z.string().optional().openapi({ description: "semver, default 1.0.0" }),
    visibility: z.enum(["private", "public"]).optional(),
    description: z.string().optional(),
    tags: z.string().optional().openapi({ description: "comma-separated", example: "style,fun" }),
  })
  .openapi("AdapterUpload");

const listQuery = z.object({
  q: z.string().max(200).optional().openapi({ description: "Substring of name, description or tags" }),
  base_model: z.string().max(MAX_MODEL_ID_CHARS).optional(),
  tag: z.string().regex(TAG_RE, "invalid tag").optional(),
  owner: z.literal("me").optional().openapi({ description: "`me`: only the caller's adapters" }),
  sort: z.enum(["downloads", "recent", "name"]).default("recent"),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(MAX_CURSOR_CHARS).optional(),
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/adapters",
  tags: ["adapters"],
  summary: "Browse adapters: public ones plus the caller's private ones",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { query: listQuery },
  responses: {
    200: {
      description: "One page",
      content: {
        "application/json": {
          schema: z.object({
            object: z.literal("list"),
            data: z.array(AdapterSchema),
            next_cursor: z.string().nullable(),
          }),
        },
      },
    },
    ...errorResponses(400, 401),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/adapters/{id}",
  tags: ["adapters"],
  summary: "One adapter",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { params: IdParam },
  responses: {
    200: { description: "The adapter", content: { "application/json": { schema: AdapterSchema } } },
    ...errorResponses(401, 404),
  },
});

const downloadRoute = createRoute({
  method: "get",
  path: "/v1/adapters/{id}/download",
  tags: ["adapters"],
  summary: "Download adapter_model.safetensors (counts a download)",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { params: IdParam },
  responses: {
    200: {
      description: "The safetensors bytes; header x-loraedge-sha256",
      content: { "application/octet-stream": { schema: z.string().openapi({ type: "string", format: "binary" }) } },
    },
    ...errorResponses(401, 404, 503),
  },
});

const configRoute = createRoute({
  method: "get",
  path: "/v1/adapters/{id}/config",
  tags: ["adapters"],
  summary: "Download adapter_config.json as uploaded",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { params: IdParam },
  responses: {
    200: {
      description: "The PEFT config",
      content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
    },
    ...errorResponses(401, 404),
  },
});

const patchRoute = createRoute({
  method: "patch",
  path: "/v1/adapters/{id}",
  tags: ["adapters"],
  summary: "Change visibility, description or tags (owner only; the files are immutable)",
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
              visibility: z.enum(["private", "public"]).optional(),
              description: z.string().max(MAX_DESCRIPTION_CHARS).optional(),
              tags: z.union([z.array(z.string().max(64)).max(64), z.string().max(MAX_TAGS_FIELD_CHARS)]).optional().openapi({ description: "list or comma-separated" }),
            })
            .strict(),
        },
      },
    },
  },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: AdapterSchema } } },
    ...errorResponses(400, 401, 403, 404),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/adapters/{id}",
  tags: ["adapters"],
  summary: "Delete an adapter (owner only). 409 while compositions use it, unless force=true (which deletes those compositions)",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: {
    params: IdParam,
    query: z.object({ force: z.enum(["true", "false"]).optional() }),
  },
  responses: {
    200: {
      description: "Deleted",
      content: {
        "application/json": {
          schema: z.object({ id: z.string(), deleted: z.literal(true), deleted_compositions: z.array(z.string()) }),
        },
      },
    },
    ...errorResponses(401, 403, 404, 409),
  },
});

export const adapterRoutes = newRouter();

// Upload: multipart is parsed by hand (streamed size checks, precise errors), so the route is
// registered for the OpenAPI document only and served by a plain handler.
adapterRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/v1/adapters",
  tags: ["adapters"],
  summary: "Upload a PEFT LoRA adapter (multipart/form-data)",
  security: tenantSecurity,
  request: { body: { required: true, content: { "multipart/form-data": { schema: UploadFormSchema } } } },
  responses: {
    201: { description: "Stored", content: { "application/json": { schema: AdapterSchema } } },
    ...errorResponses(400, 401, 409, 413, 422, 503),
  },
});

/** A chunked upload body (no Content-Length) is read only up to the upload limit, never to its end. */
const uploadBodyLimit: MiddlewareHandler<AppEnv> = function uploadBodyLimit(c, next) {
  const { maxBytes } = uploadLimits(c.env);
  const maxSize = maxUploadBodyBytes(maxBytes);
  return bodyLimit({
    maxSize,
    onError: () => {
      throw payloadTooLarge(`upload body exceeds ${maxSize} bytes (the adapter size limit is ${maxBytes} bytes)`);
    },
  })(c, next);
};

adapterRoutes.post("/v1/adapters", requireTenant, uploadBodyLimit, async (c) => {
  const tenant = tenantOf(c);
  const limits = uploadLimits(c.env);
  const form = await readUploadForm(c.req.raw, limits.maxBytes);
  const manifest = await findManifest(c.env, c.var.db, form.baseModel);
  if (!manifest) throw unprocessable(`unknown base_model '${form.baseModel}': no runner serves it (see GET /v1/models)`);
  const { summary } = validateAdapterFiles(form.config, form.weights, manifest, limits.maxRank);
  const scale = summary.scale ?? summary.scales[summary.scales.length - 1] ?? 1;
  const row = await storeAdapter(c.var.db, c.env.ADAPTERS, tenant, {
    name: form.name,
    version: form.version,
    baseModel: form.baseModel,
    visibility: form.visibility,
    description: form.description,
    tags: form.tags,
    rank: summary.rank,
    alpha: summary.alpha ?? scale * summary.rank,
    scale,
    targets: summary.targets,
    dtype: summary.dtype ?? "unknown",
    configJson: form.configText,
    weights: form.weights,
  });
  return c.json(adapterJson(row), 201);
});

adapterRoutes
  .openapi(listRoute, async (c) => {
    const tenant = tenantOf(c);
    const q = c.req.valid("query");
    const { rows, next } = await listAdapters(c.var.db, {
      tenantId: tenant.id,
      q: q.q || undefined,
      baseModel: q.base_model,
      tag: q.tag,
      ownerMe: q.owner === "me",
      sort: q.sort,
      limit: q.limit,
      after: q.cursor ? decodeCursor(q.sort, q.cursor) : undefined,
    });
    return c.json(
      { object: "list" as const, data: rows.map(adapterJson), next_cursor: next ? encodeCursor(q.sort, next) : null },
      200,
    );
  })
  .openapi(getRoute, async (c) => {
    const row = await resolveAdapter(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    return c.json(adapterJson(row), 200);
  })
  .openapi(downloadRoute, async (c) => {
    const row = await resolveAdapter(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    const object = await c.env.ADAPTERS.get(row.r2Key);
    if (!object) throw serviceUnavailable(`blob of adapter '${row.id}' is missing from storage`);
    await incrementDownloads(c.var.db, row.id);
    return new Response(object.body, {
      status: 200,
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(object.size),
        "content-disposition": `attachment; filename="${WEIGHTS_PART}"`,
        [SHA256_HEADER]: row.sha256,
        etag: `"${row.sha256}"`,
      },
    });
  })
  .openapi(configRoute, async (c) => {
    const row = await resolveAdapter(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    return new Response(row.configJson, {
      status: 200,
      headers: {
        "content-type": "application/json",
        "content-disposition": `attachment; filename="${CONFIG_PART}"`,
      },
      // `as never`: the stored config bytes go out as they are (a raw Response), which the route's
      // typed JSON response cannot express without parsing and re-serialising them.
    }) as never;
  })
  .openapi(patchRoute, async (c) => {
    const db = c.var.db;
    const tenant = tenantOf(c);
    const row = await resolveOwnAdapter(db, tenant.id, c.req.valid("param").id);
    const body = c.req.valid("json");
    const set: Parameters<typeof updateAdapter>[2] = {};
    if (body.visibility !== undefined) set.visibility = body.visibility;
    if (body.description !== undefined) set.description = body.description;
    if (body.tags !== undefined) {
      try {
        set.tags = encodeTags(parseTags(Array.isArray(body.tags) ? body.tags.join(",") : body.tags));
      } catch (e) {
        throw badRequest((e as Error).message);
      }
    }
    await updateAdapter(db, row.id, set);
    return c.json(adapterJson({ ...row, ...set }), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const db = c.var.db;
    const tenant = tenantOf(c);
    const row = await resolveOwnAdapter(db, tenant.id, c.req.valid("param").id);
    const using = await compositionsUsing(db, row.id, tenant.id);
    const force = c.req.valid("query").force === "true";
    // Other tenants' data is never deleted on their behalf: an adapter they compose stays (make it
    // private to stop new uses). `force` deletes only the caller's own compositions.
    if (using.others > 0) {
      throw conflict("adapter is used by saved compositions of other tenants and cannot be deleted; set its visibility to private to stop new uses");
    }
    if (using.own.length && !force) {
      throw conflict(`adapter is used by ${using.own.length} of your saved composition(s); delete them first or pass ?force=true`);
    }
    await deleteAdapterRow(db, row.id, using.own);
    try {
      await deleteBlobIfUnreferenced(db, c.env.ADAPTERS, row.sha256);
    } catch (e) {
      // The adapter is gone (its row committed); an undeleted blob is invisible garbage, not a failed delete.
      log("error", "orphan blob left after adapter delete", {
        request_id: c.var.requestId,
        sha256: row.sha256,
        error: e instanceof Error ? e.message : String(e),
      });
    }
    return c.json({ id: row.id, deleted: true as const, deleted_compositions: using.own }, 200);
  });
