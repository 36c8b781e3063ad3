import { mixBoundsViolation, type MixBoundTerm } from "#core/wire/mix-bounds";
import type { AdapterRow } from "../adapters/queries.js";
import { badRequest } from "../errors/api-error.js";

/** A resolved mix entry: the adapter record (scale and targets are known at the edge) and its weight. */
export interface BoundedMixEntry {
  adapter: Pick<AdapterRow, "scale" | "targets"> & { label: string };
  weight: number;
}

/**
 * Enforces the documented numeric range of a mix (core/src/wire/mix-bounds.ts: |w| ≤ 1e3 and
 * Σ|w·s| ≤ 1e5 per module) wherever a mix enters: completions (`adapters` or `composition`),
 * saving a composition, baking one. 400 naming the first offending entry or module.
 */
export function assertMixWithinBounds(entries: readonly BoundedMixEntry[]): void {
  const terms: MixBoundTerm[] = entries.map((e) => ({
    label: e.adapter.label,
    weight: e.weight,
    scale: e.adapter.scale,
    targets: JSON.parse(e.adapter.targets) as string[],
  }));
  const violation = mixBoundsViolation(terms);
  if (violation) throw badRequest(violation);
}
