import type { PeftConfig } from "./peft-config.js";
import { compilePatterns, lookupPattern, type CompiledPatterns } from "./pattern-key.js";

/** rank, alpha and scale of one module after rank_pattern / alpha_pattern. */
export interface ModuleScale {
  rank: number;
  alpha: number;
  /** Semantics: alpha / r, or alpha / √r with use_rslora (PEFT LoraLayer.update_layer). */
  scale: number;
  /** Which pattern keys decided r and alpha (null: the defaults). */
  rankKey: string | null;
  alphaKey: string | null;
}

export type ModuleScaleResolver = (module: string) => ModuleScale;

/**
 * Semantics (PEFT LoraModel._create_and_replace + LoraLayer.update_layer):
 *   r     = rank_pattern[get_pattern_key(rank_pattern, module)]  or config r
 *   alpha = alpha_pattern[get_pattern_key(alpha_pattern, module)] or config lora_alpha
 *   scale = alpha / √r if use_rslora else alpha / r
 */
export function moduleScaleResolver(config: PeftConfig): ModuleScaleResolver {
  const ranks: CompiledPatterns<number> = compilePatterns(config.rankPattern, "rank_pattern");
  const alphas: CompiledPatterns<number> = compilePatterns(config.alphaPattern, "alpha_pattern");
  return function resolveModuleScale(module: string): ModuleScale {
    const r = lookupPattern(ranks, module, config.r);
    const a = lookupPattern(alphas, module, config.loraAlpha);
    const scale = config.useRslora ? a.value / Math.sqrt(r.value) : a.value / r.value;
    return { rank: r.value, alpha: a.value, scale, rankKey: r.key, alphaKey: a.key };
  };
}
