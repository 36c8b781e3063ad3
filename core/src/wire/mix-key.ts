/**
 * The one definition of "same mix": a request's adapters in canonical form, and its key.
 *
 * Semantics: ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ does not depend on the order of the terms, and two terms of the
 * same adapter add their weights ({a:1, a:1} ≡ {a:2}); a term of weight 0 adds nothing. So the
 * canonical mix
 *   1. merges entries of the same adapter (same id and sha256) by summing their weights (the
 *      weights of a group summed in ascending order, so any permutation gives the same sum),
 *   2. drops entries whose (summed) weight is 0,
 *   3. orders the rest by id, then sha256;
 * and its key is `id@sha256*weight` per entry joined by "+" ("" for the base model), each weight
 * written as JavaScript's shortest round-trip decimal (`String(w)`: 0.5, 2, -1.25, 1e-7).
 * The sha256 is in the key so that a re-uploaded blob never reuses a composition made from the
 * old bytes; the id is in it because an adapter's scales come from its adapter_config.json, which
 * the blob's sha256 does not cover (same bytes, different lora_alpha ⇒ different ΔW).
 *
 * Computed once at the edge (routing: workers/src/runners/rendezvous.ts) and sent on the wire as
 * `mix_key`; the runner derives it again from the entries with this same function and refuses a
 * request whose key disagrees (gpu-runner/src/engine/mix-resolver.ts), then composes, caches and
 * batches by it.
 */
import type { WireMixEntry } from "./runner-api.js";

export interface CanonicalMix {
  /** Merged, non-zero, ordered by (id, sha256). */
  entries: WireMixEntry[];
  /** "" when `entries` is empty (the base model). */
  key: string;
}

const byIdThenSha = (x: { id: string; sha256: string }, y: { id: string; sha256: string }) =>
  x.id < y.id ? -1 : x.id > y.id ? 1 : x.sha256 < y.sha256 ? -1 : x.sha256 > y.sha256 ? 1 : 0;

export function canonicalMix(entries: readonly WireMixEntry[]): CanonicalMix {
  const groups = new Map<string, { id: string; sha256: string; weights: number[] }>();
  for (const e of entries) {
    const group = `${e.id}\n${e.sha256}`;
    const g = groups.get(group);
    if (g) g.weights.push(e.weight);
    else groups.set(group, { id: e.id, sha256: e.sha256, weights: [e.weight] });
  }
  const merged: WireMixEntry[] = [];
  for (const g of groups.values()) {
    const weight = g.weights.sort((x, y) => x - y).reduce((s, w) => s + w, 0);
    if (weight !== 0) merged.push({ id: g.id, sha256: g.sha256, weight });
  }
  merged.sort(byIdThenSha);
  return { entries: merged, key: merged.map((e) => `${e.id}@${e.sha256}*${String(e.weight)}`).join("+") };
}

/** The key alone (see canonicalMix). */
export const mixKey = (entries: readonly WireMixEntry[]): string => canonicalMix(entries).key;
