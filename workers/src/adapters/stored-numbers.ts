import type { AdapterSummary } from "#core/peft/index";

/** The rank, alpha and scale an adapter's registry record shows. */
export interface StoredNumbers {
  rank: number;
  alpha: number;
  scale: number;
}

/**
 * The stored-scale rule, for uploads and bakes alike. The record's numbers are informational:
 * the runner serves every module at its own scale from the files.
 * - rank: the largest module rank;
 * - scale: the modules' common scale (alpha/r, or alpha/√r with rsLoRA) when they agree, else
 *   the largest of their scales (1 for an adapter without modules);
 * - alpha: the config's lora_alpha, else (unknown, e.g. an imported .onnx_adapter) scale × rank.
 */
export function storedNumbers(summary: Pick<AdapterSummary, "rank" | "alpha" | "scale" | "scales">): StoredNumbers {
  const scale = summary.scale ?? summary.scales[summary.scales.length - 1] ?? 1;
  return { rank: summary.rank, alpha: summary.alpha ?? scale * summary.rank, scale };
}

/** The OpenAPI description of the `scale` field, stating the rule above. */
export const STORED_SCALE_DESCRIPTION =
  "The modules' common scale (alpha/r, or alpha/√r with rsLoRA); when modules differ, the largest of their scales. Informational: each module is served at its own scale.";
