import { checkCompatibility } from "#core/compat/index";
import type { LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { unprocessable } from "../errors/api-error.js";

/**
 * Checks an adapter against its base model's manifest with core's checkCompatibility
 * (targets, in/out shapes, rank ≤ cap, fan_in_fan_out). 422 listing every mismatch; returns
 * the merge-only targets the adapter touches.
 */
export function checkAdapterAgainstManifest(adapter: LoraAdapter<LoraFactor>, manifest: ModelManifest, maxRank: number): string[] {
  const report = checkCompatibility(adapter, manifest, { maxRank });
  if (!report.ok) throw unprocessable(`incompatible with ${manifest.id}: ${report.errors.join("; ")}`);
  return report.mergeOnlyTargets;
}
