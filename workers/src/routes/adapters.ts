import { z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { SHA256_HEADER } from "#core/wire/runner-api";
import { browseAdapters, deleteAdapter, downloadAdapter, patchAdapter } from "../adapters/adapter-service.js";
import { AdapterSchema, adapterJson } from "../adapters/record.js";
import { TAG_RE } from "../adapters/refs.js";
import { resolveAdapter } from "../adapters/resolve.js";
import { CHAT_TEMPLATE_PART, CONFIG_PART, MAX_CHAT_TEMPLATE_BYTES, maxUploadBodyBytes, TOKENIZER_CONFIG_PART, WEIGHTS_PART } from "../adapters/upload-form.js";
import { findChatTemplate } from "../adapters/queries.js";
import type { AppEnv } from "../app-env.js";
import { requireTenant, tenantOf, tenantScope } from "../auth/require-tenant.js";
import { notFound, payloadTooLarge } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { uploadLimits } from "../limits/config.js";
import { MAX_CURSOR_CHARS, MAX_DESCRIPTION_CHARS, MAX_MODEL_ID_CHARS, MAX_REF_CHARS, MAX_TAGS_FIELD_CHARS } from "../validation/string-bounds.js";
import { uploadAdapterOnce } from "../adapters/idempotent-upload.js";
import { IDEMPOTENT_REPLAYED_HEADER } from "../idempotency/idempotency-key.js";
import { jsonBody, jsonResponse, listOf, newRouter, tenantRouteGroup, tenantSecurity } from "./router.js";

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
    [TOKENIZER_CONFIG_PART]: z.string().optional().openapi({
      type: "string",
      format: "binary",
      description: `Optional: the adapter's tokenizer_config.json; its chat_template (and bos_token/eos_token) is validated (parsed and rendered on a one-message conversation; a failure is a 400 with the template's message, ≤ ${MAX_CHAT_TEMPLATE_BYTES} bytes) and used for chat requests whose mix is exactly this adapter`,
    }),
    [CHAT_TEMPLATE_PART]: z.string().optional().openapi({ type: "string", format: "binary", description: "Optional: the adapter's chat template as a file (wins over tokenizer_config.json's chat_template)" }),
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
  visibility: z.enum(["private", "public"]).optional().openapi({ description: "Only public ones, or only private ones (the caller's own)" }),
  sort: z
    .enum(["downloads", "uses", "recent", "name"])
    .default("recent")
    .openapi({ description: "`uses`: most completions served with the adapter first; `downloads`: most downloaded" }),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(MAX_CURSOR_CHARS).optional(),
});

const route = tenantRouteGroup("adapters");
const binaryBody = z.string().openapi({ type: "string", format: "binary" });

const listRoute = route.get("/v1/adapters", {
  summary: "Browse adapters: public ones plus the caller's private ones",
  request: { query: listQuery },
  responses: {
    200: jsonResponse("One page", listOf(AdapterSchema).extend({ next_cursor: z.string().nullable() })),
    ...errorResponses(400, 401),
  },
});

const getRoute = route.get("/v1/adapters/{id}", {
  summary: "One adapter",
  request: { params: IdParam },
  responses: { 200: jsonResponse("The adapter", AdapterSchema), ...errorResponses(401, 404) },
});

const downloadRoute = route.get("/v1/adapters/{id}/download", {
  summary: "Download adapter_model.safetensors (counts a download)",
  request: { params: IdParam },
  responses: {
    200: { description: "The safetensors bytes; header x-loraedge-sha256", content: { "application/octet-stream": { schema: binaryBody } } },
    ...errorResponses(401, 404, 503),
  },
});

const configRoute = route.get("/v1/adapters/{id}/config", {
  summary: "Download adapter_config.json as uploaded",
  request: { params: IdParam },
  responses: { 200: jsonResponse("The PEFT config", z.record(z.string(), z.unknown())), ...errorResponses(401, 404) },
});

const chatTemplateRoute = route.get("/v1/adapters/{id}/chat_template", {
  summary: "The adapter's own chat template (404 when it was uploaded without one)",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(
      "The template and its special tokens (null: the base model's are used)",
      z.object({ chat_template: z.string(), bos_token: z.string().nullable(), eos_token: z.string().nullable() }),
    ),
    ...errorResponses(401, 404),
  },
});

const PatchSchema = z
  .object({
    visibility: z.enum(["private", "public"]).optional(),
    description: z.string().max(MAX_DESCRIPTION_CHARS).optional(),
    tags: z.union([z.array(z.string().max(64)).max(64), z.string().max(MAX_TAGS_FIELD_CHARS)]).optional().openapi({ description: "list or comma-separated" }),
  })
  .strict();

const patchRoute = route.patch("/v1/adapters/{id}", {
  summary: "Change visibility, description or tags (owner only; the files are immutable)",
  request: { params: IdParam, body: jsonBody(PatchSchema) },
  responses: { 200: jsonResponse("Updated", AdapterSchema), ...errorResponses(400, 401, 403, 404) },
});

const DeletedSchema = z.object({ id: z.string(), deleted: z.literal(true), deleted_compositions: z.array(z.string()) });

const deleteRoute = route.delete("/v1/adapters/{id}", {
  summary: "Delete an adapter (owner only). 409 while compositions use it, unless force=true (which deletes those compositions)",
  request: { params: IdParam, query: z.object({ force: z.enum(["true", "false"]).optional() }) },
  responses: { 200: jsonResponse("Deleted", DeletedSchema), ...errorResponses(401, 403, 404, 409) },
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
  responses: { 201: jsonResponse("Stored", AdapterSchema), ...errorResponses(400, 401, 409, 413, 422, 503) },
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
  const out = await uploadAdapterOnce(tenantScope(c), c.req.raw);
  return c.body(out.body, out.status as 201, {
    "content-type": "application/json",
    ...(out.replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: "true" } : {}),
  });
});

adapterRoutes
  .openapi(listRoute, async (c) => {
    const { rows, nextCursor } = await browseAdapters(tenantScope(c), c.req.valid("query"));
    return c.json({ object: "list" as const, data: rows.map(adapterJson), next_cursor: nextCursor }, 200);
  })
  .openapi(getRoute, async (c) => {
    const row = await resolveAdapter(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    return c.json(adapterJson(row), 200);
  })
  .openapi(downloadRoute, async (c) => {
    const { row, blob } = await downloadAdapter(tenantScope(c), c.req.valid("param").id);
    return new Response(blob.body, {
      status: 200,
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(blob.size),
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
  .openapi(chatTemplateRoute, async (c) => {
    const row = await resolveAdapter(c.var.db, tenantOf(c).id, c.req.valid("param").id);
    const spec = row.hasChatTemplate ? await findChatTemplate(c.var.db, row.id) : null;
    if (spec === null) throw notFound(`adapter '${row.ownerName}/${row.name}@${row.version}' has no chat template of its own`);
    return c.json({ chat_template: spec.template, bos_token: spec.bos_token, eos_token: spec.eos_token }, 200);
  })
  .openapi(patchRoute, async (c) => {
    const row = await patchAdapter(tenantScope(c), c.req.valid("param").id, c.req.valid("json"));
    return c.json(adapterJson(row), 200);
  })
  .openapi(deleteRoute, async (c) => {
    const force = c.req.valid("query").force === "true";
    const { row, deletedCompositions } = await deleteAdapter(tenantScope(c), c.req.valid("param").id, force);
    return c.json({ id: row.id, deleted: true as const, deleted_compositions: deletedCompositions }, 200);
  });
