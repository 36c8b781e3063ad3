/**
 * How the runner turns an adapter's two received files into a `LoraAdapter`: core's loader
 * (`loadPeftAdapter`: every check) with nothing converted — F32 tensors are zero-copy views of the
 * received bytes, F16 and BF16 tensors stay 16-bit (`keepHalves`: views too where 2-aligned), each
 * checked for ±Inf/NaN by one read (the SIMD scan). `composeMix` widens the halves to F32 as it
 * stages each factor for its transposes, so the composed mixes ONNX Runtime reads are F32 as before.
 *
 * Why: a conversion at load wrote twice the file's bytes of F32 into new arrays (allocation, GC and
 * page costs that kept the F16 cold load near 0.9 GB/s, bench case 6), for values composition reads
 * once more anyway; kept as halves, an F16 adapter also takes half the cache's bytes.
 */
import type { LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import { loadPeftAdapter } from "#core/peft/index";

/** The runner's adapter parser (`AdapterCache`'s `parse`): `loadPeftAdapter` keeping 16-bit tensors as they are. */
export function parseAdapter(configJson: string, safetensors: Uint8Array): LoraAdapter<LoraFactor> {
  return loadPeftAdapter(configJson, safetensors, { keepHalves: true });
}
