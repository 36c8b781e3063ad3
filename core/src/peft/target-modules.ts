import { AdapterFormatError } from "../errors.js";

/**
 * PEFT's `check_target_module_exists` for a module path `key` (e.g. "model.layers.0.self_attn.q_proj"):
 *   - exclude_modules first: a string is matched with re.fullmatch, a list matches `key` exactly
 *     or as a ".suffix";
 *   - target_modules as a string: re.fullmatch(target_modules, key);
 *   - as a list: key equal to an entry, or ending with "." + entry; then, when
 *     layers_to_transform is set, the layer index (first "<layers_pattern>.<n>." in the path, or
 *     any ".<name>.<n>." when no pattern is given) must be in it;
 *   - "all-linear" targets every linear layer except the output layer (lm_head).
 */
export interface TargetSpec {
  targetModules: string[] | string | null;
  excludeModules: string[] | string | null;
  layersToTransform: number[] | null;
  layersPattern: string[] | null;
}

function fullmatch(pattern: string, field: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, "s");
  } catch (e) {
    throw new AdapterFormatError(
      "config_invalid",
      `adapter_config.json: ${field} ${JSON.stringify(pattern)} is not a valid regular expression (${e instanceof Error ? e.message : String(e)})`,
      { field },
    );
  }
}

function inList(list: string[], key: string): boolean {
  return list.some((t) => key === t || key.endsWith(`.${t}`));
}

export type TargetMatcher = (module: string) => boolean;

export function compileTargetMatcher(spec: TargetSpec): TargetMatcher {
  const { targetModules, excludeModules, layersToTransform, layersPattern } = spec;
  const excludeRe = typeof excludeModules === "string" ? fullmatch(excludeModules, "exclude_modules") : null;
  const targetRe = typeof targetModules === "string" && targetModules !== "all-linear" ? fullmatch(targetModules, "target_modules") : null;
  const layerRes = (layersPattern && layersPattern.length > 0 ? layersPattern : [null]).map((p) =>
    p === null ? /^.*\.[^.]*\.(\d+)\./s : fullmatchPrefix(p),
  );
  return function isTargeted(key: string): boolean {
    if (excludeRe ? excludeRe.test(key) : Array.isArray(excludeModules) && inList(excludeModules, key)) return false;
    if (targetModules === null) return true; // PEFT filled it from the model type: cannot check here
    if (targetModules === "all-linear") return !/(^|\.)lm_head$/.test(key);
    if (typeof targetModules === "string") return targetRe !== null && targetRe.test(key);
    if (targetModules.includes(key)) return true;
    if (!inList(targetModules, key)) return false;
    if (layersToTransform === null || layersToTransform.length === 0) return true;
    for (const re of layerRes) {
      const m = re.exec(key);
      if (m) return layersToTransform.includes(Number(m[1]));
    }
    return false;
  };
}

function fullmatchPrefix(pattern: string): RegExp {
  try {
    return new RegExp(`^.*\\.(?:${pattern})\\.(\\d+)\\.`, "s");
  } catch {
    throw new AdapterFormatError("config_invalid", `adapter_config.json: layers_pattern ${JSON.stringify(pattern)} is not a valid regular expression`);
  }
}
