import { z } from "@hono/zod-openapi";
import type { WireMixEntry } from "#core/wire/runner-api";
import type { AdapterWithOwner } from "../adapters/queries.js";
import { resolveAdapter } from "../adapters/resolve.js";
import type { Db } from "../db/client.js";
import { badRequest, unprocessable } from "../errors/api-error.js";
import { assertMixWithinBounds } from "../validation/mix-bounds.js";
import { MAX_REF_CHARS } from "../validation/string-bounds.js";
import { MIX_WEIGHT_LIMIT } from "#core/wire/mix-bounds";

/** One entry of a requested mix, as the public API takes it (ad-hoc mixes and saved compositions). */
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

export interface MixRequestEntry {
  /** Adapter id or `owner/name@version`. */
  id: string;
  weight: number;
}

export interface ResolvedMix {
  /** What the runner receives. */
  wire: WireMixEntry[];
  adapters: AdapterWithOwner[];
}

/**
 * Resolves a requested mix for the tenant: every adapter must be visible (404 otherwise,
 * same as nonexistent), trained for `model` (422), weights finite (checked by the schema),
 * at most `maxCount` entries (400), within the documented numeric range (|w| ≤ 1e3, Σ|w·s| ≤ 1e5
 * per module: 400). Repeated ids are kept: {a:1, a:1} ≡ {a:2}.
 */
export async function resolveMix(
  db: Db,
  tenantId: string,
  model: string | null,
  entries: readonly MixRequestEntry[],
  maxCount: number,
  /** How one entry is looked up (default: resolveAdapter; the inference path passes its per-isolate cache). */
  lookup: (idOrRef: string) => Promise<AdapterWithOwner> = (idOrRef) => resolveAdapter(db, tenantId, idOrRef),
): Promise<ResolvedMix> {
  if (entries.length > maxCount) throw badRequest(`a mix may hold at most ${maxCount} adapters (got ${entries.length})`);
  for (const e of entries) {
    if (!Number.isFinite(e.weight)) throw badRequest(`weight of '${e.id}' must be a finite number`);
  }
  // All lookups at once (one round trip's latency, not one per entry); the first failing entry
  // in request order answers, as a one-at-a-time loop would.
  const found = await Promise.allSettled(entries.map((e) => lookup(e.id)));
  const failed = found.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  const adapters = found.map((r) => (r as PromiseFulfilledResult<AdapterWithOwner>).value);
  assertMixWithinBounds(adapters.map((a, i) => ({ adapter: { ...a, label: `${a.ownerName}/${a.name}@${a.version}` }, weight: entries[i]!.weight })));
  const base = model ?? adapters[0]?.baseModel ?? null;
  for (const a of adapters) {
    if (a.baseModel !== base) {
      throw unprocessable(
        `adapter '${a.ownerName}/${a.name}@${a.version}' is trained for base model '${a.baseModel}', not '${base}'`,
      );
    }
  }
  return {
    wire: adapters.map((a, i) => ({ id: a.id, sha256: a.sha256, weight: entries[i]!.weight })),
    adapters,
  };
}
