import { AdapterFormatError } from "../errors.js";

/**
 * PEFT's per-module override lookup (`peft.utils.other.get_pattern_key`), reproduced exactly:
 *
 *   for key in pattern_keys:                     # insertion order, first match wins
 *       if re.match(rf"(.*\.)?({key})$", module): return key
 *   return module                                # then rank_pattern.get(module, r)
 *
 * The key is a raw regular-expression fragment (not escaped): "q_proj" matches any module whose
 * last dotted component is q_proj, "layers.0.self_attn.q_proj" matches that path suffix, and
 * "experts.*.w1" uses `.*` as a regex. JS RegExp and Python `re` agree on the constructs such
 * keys use; a key that is not a valid regex is refused.
 *
 * Note: JS objects iterate integer-like keys ("0", "12") before other keys, so for such keys
 * only (never seen in real configs) "insertion order" is JS property order.
 */
export function compilePatternKey(key: string, field: string): RegExp {
  try {
    return new RegExp(`^(?:.*\\.)?(?:${key})$`, "s");
  } catch (e) {
    throw new AdapterFormatError(
      "config_invalid",
      `adapter_config.json: ${field} key ${JSON.stringify(key)} is not a valid regular expression (${e instanceof Error ? e.message : String(e)})`,
      { field, key },
    );
  }
}

export interface CompiledPatterns<T> {
  entries: Array<{ key: string; re: RegExp; value: T }>;
}

export function compilePatterns<T>(patterns: Record<string, T>, field: string): CompiledPatterns<T> {
  return { entries: Object.entries(patterns).map(([key, value]) => ({ key, re: compilePatternKey(key, field), value })) };
}

/** Value for `module` from the first matching pattern key, else `fallback`; also says which key matched. */
export function lookupPattern<T>(p: CompiledPatterns<T>, module: string, fallback: T): { value: T; key: string | null } {
  for (const e of p.entries) if (e.re.test(module)) return { value: e.value, key: e.key };
  return { value: fallback, key: null };
}
