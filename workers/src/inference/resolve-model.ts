import type { AdapterWithOwner } from "../adapters/queries.js";
import { findVisibleAdapter, findVisibleAdapterByRef } from "../adapters/queries.js";
import { parseAdapterRef } from "../adapters/refs.js";
import { findOwnComposition, type CompositionWithEntries } from "../compositions/queries.js";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client.js";
import { models } from "../db/schema.js";
import { notFound } from "../errors/api-error.js";

/** `model: "composition:<name or id>"` names one of the caller's saved compositions. */
export const COMPOSITION_MODEL_PREFIX = "composition:";

/** What a request's `model` named (OpenAI convention, as vLLM / LoRAX: `model` may name an adapter). */
export type ModelTarget =
  | { kind: "base"; baseModel: string }
  | { kind: "adapter"; baseModel: string; adapter: AdapterWithOwner }
  | { kind: "composition"; baseModel: string; composition: CompositionWithEntries };

/** The id `/v1/models` lists an adapter under. */
export const adapterModelId = (a: Pick<AdapterWithOwner, "ownerName" | "name" | "version">) => `${a.ownerName}/${a.name}@${a.version}`;
export const compositionModelId = (c: Pick<CompositionWithEntries, "name">) => `${COMPOSITION_MODEL_PREFIX}${c.name}`;

/**
 * Resolves a request's `model`, in this order:
 *   1. `composition:<name or id>` → the caller's own composition (404 otherwise);
 *   2. a base model id served by a runner (`isBaseModel`), or one a runner served before (its
 *      manifest is stored in D1) → that model: a base id wins over an adapter reference of the same
 *      spelling, also while its runners are unreachable (the caller then answers 503, and another
 *      tenant's adapter named like it never takes its requests);
 *   3. `owner/name@version` or `owner/name` (latest upload) → that adapter if visible (404 otherwise);
 *   4. an adapter id visible to the caller → that adapter;
 *   5. anything else → a base model id (the caller answers 404 when no runner serves it).
 * Another tenant's private adapter is reported like a missing one (404).
 */
export async function resolveModelTarget(
  db: Db,
  tenantId: string,
  model: string,
  isBaseModel: (id: string) => boolean,
  /** How an adapter is looked up by id or reference (default: straight from D1; the inference path passes its cache). */
  findAdapter: (idOrRef: string) => Promise<AdapterWithOwner | null> = (idOrRef) => {
    const ref = parseAdapterRef(idOrRef);
    return ref ? findVisibleAdapterByRef(db, tenantId, ref) : findVisibleAdapter(db, tenantId, idOrRef);
  },
): Promise<ModelTarget> {
  if (model.startsWith(COMPOSITION_MODEL_PREFIX)) {
    const name = model.slice(COMPOSITION_MODEL_PREFIX.length);
    const composition = name === "" ? null : await findOwnComposition(db, tenantId, name);
    if (!composition) throw notFound(`model '${model}': you have no composition '${name}'`);
    return { kind: "composition", baseModel: composition.baseModel, composition };
  }
  if (isBaseModel(model)) return { kind: "base", baseModel: model };
  // Both lookups at once (one round trip's latency); a base id still wins over an adapter.
  const [known, adapter] = await Promise.all([
    db.select({ id: models.id }).from(models).where(eq(models.id, model)).limit(1),
    findAdapter(model),
  ]);
  if (known.length > 0) return { kind: "base", baseModel: model };
  if (adapter) return { kind: "adapter", baseModel: adapter.baseModel, adapter };
  if (parseAdapterRef(model)) throw notFound(`model '${model}' is neither a served base model nor an adapter visible to you`);
  return { kind: "base", baseModel: model };
}
