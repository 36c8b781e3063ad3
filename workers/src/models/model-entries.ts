/**
 * `/v1/models` as OpenAI clients read it, with vLLM's conventions for LoRA: base models,
 * the adapters the caller can see and the caller's own compositions, each a "model" whose
 * `parent` is its base model id (null for a base model). Any listed id works as a request's
 * `model` (see ../inference/resolve-model.ts).
 */
import { z } from "@hono/zod-openapi";
import { findVisibleAdapterByRef, listAdapters, type AdapterWithOwner } from "../adapters/queries.js";
import { parseAdapterRef } from "../adapters/refs.js";
import { listOwnCompositions, type CompositionWithEntries } from "../compositions/queries.js";
import type { Db } from "../db/client.js";
import { badRequest } from "../errors/api-error.js";
import { adapterModelId, COMPOSITION_MODEL_PREFIX, compositionModelId, type ModelTarget } from "../inference/resolve-model.js";
import type { CatalogModel } from "../runners/catalog.js";

export const ModelSchema = z
  .object({
    id: z.string().openapi({ example: "acme/pirate@1.0.0" }),
    object: z.literal("model"),
    created: z.number().int(),
    owned_by: z.string(),
    kind: z.enum(["base", "adapter", "composition"]).openapi({ description: "Extension: what the id names" }),
    parent: z.string().nullable().openapi({ description: "Base model id of an adapter or composition; null for a base model (vLLM)" }),
    root: z.string().openapi({ description: "The base model the id runs on (vLLM)" }),
  })
  .openapi("Model");
export type ModelEntry = z.infer<typeof ModelSchema>;

export const MODEL_PAGE_DEFAULT = 1000;
export const MODEL_PAGE_MAX = 1000;

export const baseModelEntry = (m: CatalogModel, created: number): ModelEntry => ({
  id: m.id,
  object: "model",
  created,
  owned_by: m.owned_by,
  kind: "base",
  parent: null,
  root: m.id,
});

export const adapterModelEntry = (a: AdapterWithOwner): ModelEntry => ({
  id: adapterModelId(a),
  object: "model",
  created: Math.floor(a.createdAt / 1000),
  owned_by: a.ownerName,
  kind: "adapter",
  parent: a.baseModel,
  root: a.baseModel,
});

export const compositionModelEntry = (c: CompositionWithEntries, ownerName: string): ModelEntry => ({
  id: compositionModelId(c),
  object: "model",
  created: Math.floor(c.createdAt / 1000),
  owned_by: ownerName,
  kind: "composition",
  parent: c.baseModel,
  root: c.baseModel,
});

/** The entry for what `resolveModelTarget` resolved (GET /v1/models/:id). */
export function targetModelEntry(target: ModelTarget, base: CatalogModel | undefined, created: number, ownerName: string): ModelEntry | null {
  switch (target.kind) {
    case "base":
      return base ? baseModelEntry(base, created) : null;
    case "adapter":
      return adapterModelEntry(target.adapter);
    case "composition":
      return compositionModelEntry(target.composition, ownerName);
  }
}

export interface ModelPage {
  data: ModelEntry[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
}

/**
 * One page of the listing, in a fixed order: base models (by id), then the caller's
 * compositions (by name), then the adapters visible to the caller (by name, then id) —
 * compositions and adapters only for a base model in `bases` (what can run now).
 * `after` is the id of the last entry of the previous page (OpenAI cursor convention); an id
 * that is not in the listing → 400.
 */
export async function listModelEntries(
  db: Db,
  tenant: { id: string; name: string },
  bases: CatalogModel[],
  created: number,
  page: { after?: string; limit: number },
): Promise<ModelPage> {
  const out: ModelEntry[] = [];
  const want = page.limit + 1;
  const served = new Set(bases.map((m) => m.id));
  let section: "base" | "composition" | "adapter" = "base";
  let baseFrom = 0;
  let compositionAfter: string | null = null;
  let adapterAfter: [string, string] | undefined;
  if (page.after !== undefined) {
    const after = page.after;
    const baseIdx = bases.findIndex((m) => m.id === after);
    if (baseIdx >= 0) baseFrom = baseIdx + 1;
    else if (after.startsWith(COMPOSITION_MODEL_PREFIX)) {
      section = "composition";
      compositionAfter = after.slice(COMPOSITION_MODEL_PREFIX.length);
    } else {
      const ref = parseAdapterRef(after);
      const adapter = ref && ref.version !== null ? await findVisibleAdapterByRef(db, tenant.id, ref) : null;
      if (!adapter) throw badRequest(`after: '${after}' is not an id of this listing`);
      section = "adapter";
      adapterAfter = [adapter.name, adapter.id];
    }
  }
  if (section === "base") for (const m of bases.slice(baseFrom)) out.push(baseModelEntry(m, created));
  if (section !== "adapter" && out.length < want) {
    const own = (await listOwnCompositions(db, tenant.id)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const comp of own) {
      if (!served.has(comp.baseModel)) continue;
      if (compositionAfter === null || comp.name > compositionAfter) out.push(compositionModelEntry(comp, tenant.name));
    }
  }
  if (out.length < want) {
    const { rows } = await listAdapters(db, {
      tenantId: tenant.id,
      baseModelIn: [...served],
      sort: "name",
      limit: want - out.length,
      after: adapterAfter,
    });
    for (const a of rows) out.push(adapterModelEntry(a));
  }
  const data = out.slice(0, page.limit);
  return { data, has_more: out.length > page.limit, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
}
