import type { LoraAdapter } from "../../../core/src/lora/types.js";
import type { ModelManifest } from "../../../core/src/manifest/model-manifest.js";
import { unprocessable } from "../errors/api-error.js";

/**
 * Checks an adapter against its base model's manifest: every module is a target of the
 * model with matching in/out sizes, every rank ≤ cap, fan_in_fan_out agrees. Throws 422 with
 * every mismatch listed; returns the merge-only targets the adapter touches.
 * TODO(core): delegate to core's checkCompatibility once it is committed.
 */
export function checkAdapterAgainstManifest(adapter: LoraAdapter, manifest: ModelManifest, maxRank: number): string[] {
  const targets = new Map(manifest.targets.map((t) => [t.module, t]));
  const errors: string[] = [];
  const mergeOnly: string[] = [];
  for (const m of adapter.modules.values()) {
    const t = targets.get(m.module);
    if (!t) {
      errors.push(`module "${m.module}" is not a targetable module of ${manifest.id}`);
      continue;
    }
    if (t.in !== m.inFeatures || t.out !== m.outFeatures) {
      errors.push(`module "${m.module}": adapter is ${m.inFeatures}→${m.outFeatures}, ${manifest.id} has ${t.in}→${t.out}`);
    }
    if (m.rank > maxRank) errors.push(`module "${m.module}": rank ${m.rank} exceeds the cap ${maxRank}`);
    if (t.fanInFanOut !== adapter.fanInFanOut) {
      errors.push(`module "${m.module}": fan_in_fan_out is ${adapter.fanInFanOut} but ${manifest.id} stores this weight ${t.fanInFanOut ? "[in, out]" : "[out, in]"}`);
    }
    if (t.mode === "merge-only") mergeOnly.push(m.module);
  }
  if (errors.length) throw unprocessable(`incompatible with ${manifest.id}: ${errors.join("; ")}`);
  return mergeOnly;
}
