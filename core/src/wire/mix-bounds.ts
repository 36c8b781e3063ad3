/**
 * Documented numeric range of a mix (ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ), enforced by the edge wherever a mix
 * enters (completions, compositions, bake) and available to the runner.
 *
 * Why: a weight of 1e38 is finite in JSON but overflows float32 once multiplied into a factor;
 * on a shared batch path ∞·0 = NaN reaches other rows. The bounds keep every composed factor
 * many orders of magnitude below float32's 3.4e38 for any adapter whose own values are sane
 * (the runner still refuses a composed factor that is not finite).
 */

/** |wᵢ| ≤ this for every mix entry. */
export const MIX_WEIGHT_LIMIT = 1e3;

/**
 * Σᵢ |wᵢ·sᵢ| over the entries touching one module ≤ this (sᵢ: the adapter's scale,
 * alpha/r or alpha/√r). Bounds the factor a module's composed ΔW is multiplied by.
 */
export const MIX_MODULE_SCALE_LIMIT = 1e5;

export interface MixBoundTerm {
  /** How the term is named in messages (e.g. `owner/name@version`). */
  label: string;
  weight: number;
  /** The adapter's largest module scale. */
  scale: number;
  /** PEFT module paths the adapter touches. */
  targets: readonly string[];
}

/**
 * First violation of the documented range, as a message, or null when the mix is within it.
 * Semantics: every weight finite with |w| ≤ MIX_WEIGHT_LIMIT, every scale finite, and for each
 * module m: Σ_{i touching m} |wᵢ·sᵢ| ≤ MIX_MODULE_SCALE_LIMIT.
 */
export function mixBoundsViolation(terms: readonly MixBoundTerm[]): string | null {
  const perModule = new Map<string, number>();
  for (const t of terms) {
    if (!Number.isFinite(t.weight) || Math.abs(t.weight) > MIX_WEIGHT_LIMIT) {
      return `weight ${t.weight} of '${t.label}' is outside the allowed range [-${MIX_WEIGHT_LIMIT}, ${MIX_WEIGHT_LIMIT}]`;
    }
    if (!Number.isFinite(t.scale)) return `adapter '${t.label}' has a non-finite scale`;
    const product = Math.abs(t.weight * t.scale);
    for (const m of t.targets) perModule.set(m, (perModule.get(m) ?? 0) + product);
  }
  for (const [module, sum] of perModule) {
    if (!(sum <= MIX_MODULE_SCALE_LIMIT)) {
      return `the mix scales module '${module}' by Σ|weight·scale| = ${sum}, above the limit ${MIX_MODULE_SCALE_LIMIT}`;
    }
  }
  return null;
}
