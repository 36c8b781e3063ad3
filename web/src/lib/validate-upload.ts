import { checkCompatibility } from "#core/compat/index";
import { isAdapterFormatError } from "#core/errors";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { parsePeftConfig, readPeftAdapter, type AdapterSummary } from "#core/peft/index";
import { readSafetensors } from "#core/safetensors/index";

/** One module of a validated adapter, for the table shown before upload. */
export interface ModuleShape {
  module: string;
  rank: number;
  /** lora_A [rank, in], lora_B [out, rank]. */
  in: number;
  out: number;
  scale: number;
}

export interface UploadCheck {
  /** Errors to show beside adapter_config.json (empty when fine). */
  configErrors: string[];
  /** Errors to show beside adapter_model.safetensors, including every mismatch with the model. */
  weightsErrors: string[];
  /** Present when both files parsed. */
  summary: AdapterSummary | null;
  modules: ModuleShape[];
  /** Targets only a merged session can serve (allowed; shown as a note). */
  mergeOnlyTargets: string[];
  ok: boolean;
}

const describe = (e: unknown) => (isAdapterFormatError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));

/**
 * Checks PEFT files in the browser with core's own parser, the way the edge will
 * (`workers/src/adapters/validate.ts`): config and container format, then compatibility with the
 * chosen base model's manifest (targets, shapes, fan_in_fan_out, rank ≤ maxRank). Each error
 * is attributed to the file it comes from, so the page can show it beside that file.
 * `maxRank` defaults to the manifest's (the edge may cap lower; it then answers 422).
 */
export function checkUpload(configText: string, weights: Uint8Array, manifest: ModelManifest, maxRank = manifest.maxRank): UploadCheck {
  const result: UploadCheck = { configErrors: [], weightsErrors: [], summary: null, modules: [], mergeOnlyTargets: [], ok: false };
  let configJson: unknown;
  try {
    configJson = JSON.parse(configText);
  } catch (e) {
    result.configErrors.push(`not valid JSON: ${(e as Error).message}`);
  }
  if (configJson !== undefined) {
    try {
      parsePeftConfig(configJson);
    } catch (e) {
      result.configErrors.push(describe(e));
    }
  }
  try {
    readSafetensors(weights);
  } catch (e) {
    result.weightsErrors.push(describe(e));
  }
  if (result.configErrors.length || result.weightsErrors.length) return result;

  try {
    const load = readPeftAdapter(configJson, weights);
    result.summary = load.summary;
    result.modules = [...load.adapter.modules.values()]
      .map((m) => ({ module: m.module, rank: m.rank, in: m.inFeatures, out: m.outFeatures, scale: m.scale }))
      .sort((a, b) => a.module.localeCompare(b.module));
    const report = checkCompatibility(load.adapter, manifest, { maxRank });
    result.weightsErrors.push(...report.errors);
    result.mergeOnlyTargets = report.mergeOnlyTargets;
  } catch (e) {
    result.weightsErrors.push(describe(e));
  }
  result.ok = result.configErrors.length === 0 && result.weightsErrors.length === 0;
  return result;
}
