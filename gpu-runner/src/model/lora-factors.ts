/**
 * Numeric containment of composed LoRA factors. A mix weight ≥ 1e38 is finite in JSON but
 * overflows float32 once multiplied into Aᵗ (and an adapter's own values can be that large):
 * such a factor makes ∞ in the products, and ∞ · 0 = NaN wherever another row's zeros meet it.
 *
 * Semantics: a mix is contained iff every value of every module's Aᵗ and Bᵗ is finite with
 * |v| ≤ MAX_LORA_FACTOR. Then for any row whose hidden values h satisfy |h| ≤ 1e3, each
 * product term |h · a · b| ≤ 1e3 · 1e30 stays finite, and sums over in·R ≤ 1e5 terms stay
 * below float32's 3.4e38, so a masked-out (multiplied by 0) term is exactly 0, never NaN.
 * Honest adapters are many orders of magnitude below the bound (PEFT factors are O(1)).
 * Cost: none for a mix `composeMix` verified within the bound as it composed (`verifiedBound`, the engine's
 * mixes: scanned in its workspace, in cache); else one pass over the mix's floats the first time a mix object
 * is checked (memoised per object):
 * the SIMD bound scan (`allWithinStreamed`; the JS loop `firstBad` only finds the value it refused,
 * or scans where the kernels are unavailable). Each new mix is checked once as it is composed, so this
 * pass is part of every composition: the JS loop alone took as long as composing (32 vs 30 ms for a
 * 35 MB mix of ranks 8 + 24 + 32 on loraedge-small), the kernel 6.4 ms, 5× less (lora-factors.test.ts holds both equal).
 */
import { allWithinStreamed } from "#core/simd/index";
import type { ComposedMix } from "#core/lora/types";

/** Largest |value| accepted in a composed Aᵗ or Bᵗ (√ of ~1e30: products of two factors stay finite). */
export const MAX_LORA_FACTOR = 1e15;

const verdicts = new WeakMap<ComposedMix, string | null>();

/** The reference scan: index of the first value beyond ±MAX_LORA_FACTOR or NaN, or −1. */
export function firstBad(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // NaN fails both comparisons, ±∞ fails the bound.
    if (!(v <= MAX_LORA_FACTOR && v >= -MAX_LORA_FACTOR)) return i;
  }
  return -1;
}

/**
 * Why the mix's factors are unsafe to batch (a module, which factor, the value), or null when
 * every value is finite and within ±MAX_LORA_FACTOR. Memoised per mix object (mixes are immutable).
 */
export function loraFactorProblem(mix: ComposedMix): string | null {
  const known = verdicts.get(mix);
  if (known !== undefined) return known;
  // Verified as composed (composeMix's `bound`, scanned in its workspace): no second pass.
  if (mix.verifiedBound !== undefined && mix.verifiedBound <= MAX_LORA_FACTOR) {
    verdicts.set(mix, null);
    return null;
  }
  let problem: string | null = null;
  for (const [name, m] of mix.modules) {
    for (const [label, values] of [["A", m.at], ["B", m.bt]] as const) {
      const at = allWithinStreamed(values, MAX_LORA_FACTOR) === true ? -1 : firstBad(values);
      if (at >= 0) {
        problem = `module ${name}: composed lora_${label} holds ${values[at]} (non-finite or beyond ±${MAX_LORA_FACTOR}: the adapter's values times its mix weight and scale overflow float32)`;
        break;
      }
    }
    if (problem) break;
  }
  verdicts.set(mix, problem);
  return problem;
}

/** True when the mix's factors are finite and bounded (see loraFactorProblem). */
export function isContainedMix(mix: ComposedMix): boolean {
  return loraFactorProblem(mix) === null;
}
