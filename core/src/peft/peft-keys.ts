/**
 * PEFT safetensors key names.
 *   base_model.model.<module>.lora_A.weight            [r, in]
 *   base_model.model.<module>.lora_B.weight            [out, r]
 *   base_model.model.<module>.lora_A.<adapter>.weight  (older / multi-adapter saves)
 */
export const PEFT_PREFIX = "base_model.model.";

export type PeftKey =
  | { kind: "lora"; module: string; part: "A" | "B"; adapterName: string | null }
  | { kind: "embedding"; module: string }
  | { kind: "dora"; module: string }
  | { kind: "lora_bias"; module: string }
  | { kind: "other" };

const LORA_RE = /^base_model\.model\.(.+)\.lora_(A|B)(?:\.([^.]+))?\.weight$/s;
const EMB_RE = /^base_model\.model\.(.+)\.lora_embedding_(?:A|B)(?:\.[^.]+)?$/s;
const DORA_RE = /^base_model\.model\.(.+)\.lora_magnitude_vector(?:\.[^.]+)?(?:\.weight)?$/s;
const BIAS_RE = /^base_model\.model\.(.+)\.lora_(?:A|B)(?:\.[^.]+)?\.bias$/s;

export function parsePeftKey(name: string): PeftKey {
  let m = LORA_RE.exec(name);
  if (m) return { kind: "lora", module: m[1], part: m[2] as "A" | "B", adapterName: m[3] ?? null };
  if ((m = EMB_RE.exec(name))) return { kind: "embedding", module: m[1] };
  if ((m = DORA_RE.exec(name))) return { kind: "dora", module: m[1] };
  if ((m = BIAS_RE.exec(name))) return { kind: "lora_bias", module: m[1] };
  return { kind: "other" };
}

export function peftKey(module: string, part: "A" | "B"): string {
  return `${PEFT_PREFIX}${module}.lora_${part}.weight`;
}
