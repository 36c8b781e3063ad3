import { AdapterFormatError } from "../errors.js";
import type { LoraFactor } from "../lora/factor.js";
import type { LoraAdapter } from "../lora/types.js";
import type { ModelManifest, TargetModule } from "../manifest/model-manifest.js";

export interface CompatibilityOptions {
  /** Largest rank accepted per module (default: manifest.maxRank). */
  maxRank?: number;
}

export interface CompatibilityReport {
  /** True when `errors` is empty (merge-only targets do not make it false). */
  ok: boolean;
  /** Every mismatch, one sentence each, in module order. */
  errors: string[];
  /** Adapter modules the model can only apply through a merged session (ΔW inside a fused op). */
  mergeOnlyTargets: string[];
}

/**
 * Checks an adapter against a base model's manifest. Reports EVERY problem, not the first:
 *   - the adapter has no modules;
 *   - a module is not a target of the model (with a hint when only the prefix differs);
 *   - A is [r, in] and B is [out, r] with (in, out) ≠ the target's (in, out) — including the
 *     transposed case (shapes are logical in/out, so fan_in_fan_out does not change them);
 *   - r > maxRank;
 *   - fan_in_fan_out disagrees with how the model stores the weight (A/B shapes are the same
 *     either way, so a wrong flag would transpose ΔW silently on square layers; PEFT overrides
 *     the flag from the layer type with a warning, here it is refused);
 *   - internal inconsistency (array lengths ≠ r·in, out·r; non-finite scale).
 * Merge-only targets are allowed and listed in `mergeOnlyTargets`.
 */
export function checkCompatibility(adapter: LoraAdapter<LoraFactor>, manifest: ModelManifest, opts: CompatibilityOptions = {}): CompatibilityReport {
  const maxRank = opts.maxRank ?? manifest.maxRank;
  const targets = new Map<string, TargetModule>(manifest.targets.map((t) => [t.module, t]));
  const errors: string[] = [];
  const mergeOnlyTargets: string[] = [];
  if (adapter.modules.size === 0) errors.push("adapter has no modules");

  for (const name of [...adapter.modules.keys()].sort()) {
    const m = adapter.modules.get(name)!;
    const t = targets.get(name);
    if (!t) {
      errors.push(`module "${name}" is not a target of model "${manifest.id}"${suggest(name, targets)}`);
    } else {
      if (m.inFeatures !== t.in || m.outFeatures !== t.out) {
        const transposed = m.inFeatures === t.out && m.outFeatures === t.in;
        errors.push(
          `module "${name}": adapter maps ${m.inFeatures} → ${m.outFeatures} features (A [${m.rank}, ${m.inFeatures}], B [${m.outFeatures}, ${m.rank}]) but model "${manifest.id}" expects ${t.in} → ${t.out}` +
            (transposed ? " (in and out are swapped: A/B exported from [in, out] weights without transposing?)" : ""),
        );
      }
      if (t.mode === "merge-only") mergeOnlyTargets.push(name);
      if (t.fanInFanOut !== adapter.fanInFanOut) {
        errors.push(
          `module "${name}": adapter has fan_in_fan_out=${adapter.fanInFanOut} but model "${manifest.id}" stores this weight ${t.fanInFanOut ? "[in, out] (fan_in_fan_out=true)" : "[out, in] (fan_in_fan_out=false)"}`,
        );
      }
    }
    if (m.rank > maxRank) errors.push(`module "${name}": rank ${m.rank} exceeds the maximum rank ${maxRank} of model "${manifest.id}"`);
    if (m.a.length !== m.rank * m.inFeatures || m.b.length !== m.outFeatures * m.rank) {
      errors.push(`module "${name}": A has ${m.a.length} values and B ${m.b.length}, expected ${m.rank * m.inFeatures} and ${m.outFeatures * m.rank}`);
    }
    if (!Number.isFinite(m.scale)) errors.push(`module "${name}": scale ${m.scale} is not finite`);
  }
  return { ok: errors.length === 0, errors, mergeOnlyTargets };
}

/** Like checkCompatibility, but throws AdapterFormatError("incompatible_adapter") listing every error. */
export function assertCompatible(adapter: LoraAdapter<LoraFactor>, manifest: ModelManifest, opts: CompatibilityOptions = {}): CompatibilityReport {
  const report = checkCompatibility(adapter, manifest, opts);
  if (!report.ok) {
    throw new AdapterFormatError(
      "incompatible_adapter",
      `adapter is not compatible with model "${manifest.id}" (${report.errors.length} problem${report.errors.length === 1 ? "" : "s"}): ${report.errors.join("; ")}`,
      { errors: report.errors, mergeOnlyTargets: report.mergeOnlyTargets },
    );
  }
  return report;
}

/** " (did you mean …?)" when a target has the same path after a differing leading prefix. */
function suggest(name: string, targets: Map<string, TargetModule>): string {
  const parts = name.split(".");
  // Drop only leading prefix components: never the layer index or anything after it.
  const firstIndex = parts.findIndex((p) => /^\d+$/.test(p));
  const lastDrop = firstIndex > 0 ? firstIndex - 1 : 1;
  for (let i = 1; i <= lastDrop && i < parts.length - 1; i++) {
    const tail = parts.slice(i).join(".");
    for (const t of targets.keys()) {
      if (t === tail || t.endsWith(`.${tail}`)) return ` (did you mean "${t}"? module paths must match the model's)`;
    }
  }
  return "";
}
