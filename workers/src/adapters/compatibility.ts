import { checkCompatibility } from "../../../core/src/compat/index.js";
import type { LoraAdapter } from "../../../core/src/lora/types.js";
import type { ModelManifest } from "../../../core/src/manifest/model-manifest.js";
import { unprocessable } from "../errors/api-error.js";

/**
 * Checks an adapter against its base model's manifest with core's checkCompatibility
 * (targets, in/out shapes, rank ≤ cap, fan_in_fan_out). 422 listing every mismatch; returns
 * the merge-only targets the adapter touches.
 */
export function checkAdapterAgainstManifest(adapter: LoraAdapter, manifest: ModelManifest, maxRank: number): string[] {
  const report = checkCompatibility(adapter, manifest, { maxRank });
  if (!report.ok) throw unprocessable(`incompatible with ${manifest.id}: ${report.errors.join("; ")}`);
  return report.mergeOnlyTargets;
}
