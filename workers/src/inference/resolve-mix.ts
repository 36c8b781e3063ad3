import type { WireMixEntry } from "#core/wire/runner-api";
import type { AdapterWithOwner } from "../adapters/queries.js";
import { resolveAdapter } from "../adapters/resolve.js";
import type { Db } from "../db/client.js";
import { badRequest, unprocessable } from "../errors/api-error.js";
import { assertMixWithinBounds } from "../validation/mix-bounds.js";

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
): Promise<ResolvedMix> {
  if (entries.length > maxCount) throw badRequest(`a mix may hold at most ${maxCount} adapters (got ${entries.length})`);
  const adapters: AdapterWithOwner[] = [];
  for (const e of entries) {
    if (!Number.isFinite(e.weight)) throw badRequest(`weight of '${e.id}' must be a finite number`);
    adapters.push(await resolveAdapter(db, tenantId, e.id));
  }
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
