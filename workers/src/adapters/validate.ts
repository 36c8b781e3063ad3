import { isAdapterFormatError } from "#core/errors";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { readPeftAdapter, type AdapterSummary, type PeftAdapterLoad } from "#core/peft/index";
import type { LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import { ApiError } from "../errors/api-error.js";
import { checkAdapterAgainstManifest } from "./compatibility.js";

export interface ValidatedAdapter {
  /** As the runner holds it: F16/BF16 factors kept 16-bit (validation only reads them: no conversion on the edge's CPU). */
  adapter: LoraAdapter<LoraFactor>;
  summary: AdapterSummary;
  /** Targets only a merged session can serve (the runner decides how to serve them). */
  mergeOnlyTargets: string[];
}

/**
 * Validates PEFT files with core: container and config format (400 when malformed, 422 when
 * refused), then compatibility with the base model's manifest (shapes, targets, rank cap): 422.
 */
export function validateAdapterFiles(
  config: unknown,
  weights: Uint8Array,
  manifest: ModelManifest,
  maxRank: number,
): ValidatedAdapter {
  let load: PeftAdapterLoad<LoraFactor>;
  try {
    load = readPeftAdapter(config, weights, { keepHalves: true });
  } catch (e) {
    if (isAdapterFormatError(e)) {
      throw new ApiError(e.status === 400 ? "invalid_request_error" : "unprocessable_entity_error", `${e.code}: ${e.message}`);
    }
    throw e;
  }
  const cap = Math.min(maxRank, manifest.maxRank);
  const mergeOnlyTargets = checkAdapterAgainstManifest(load.adapter, manifest, cap);
  return { adapter: load.adapter, summary: load.summary, mergeOnlyTargets };
}
