/**
 * Which LoRA path each row of a step takes. Every target computes
 *   y = x·W + (x·Aᵗ)·Bᵗ + ((x·Ac) ⊙ Mk)·Bc
 * - per-row path: Aᵗ [batch, in, R] / Bᵗ [batch, R, out], each row's mix zero-padded to the
 *   largest R among the rows on this path (a row pays B·R_max, even when its mix is shared);
 * - shared path: Ac [in, Rc] / Bc [Rc, out] hold each UNIQUE mix once, side by side along the
 *   rank axis, and the 0/1 mask Mk [batch, 1, Rc] keeps only a row's own columns
 *   (one GEMM per module over all rows: pays Rc = Σ unique ranks once, but every row multiplies
 *   against all Rc columns).
 */
import type { ComposedMix } from "#core/lora/types";
import { isContainedMix } from "./lora-factors.js";

/**
 * A decode step goes entirely to the shared path while Σ unique maxRank ≤ this × max maxRank.
 * Measured (loraedge-small, decode, past 16, 2 threads, min of 8 runs, ranks 8–96 as bench case 3;
 * per-row / all-shared / shared-only-for-repeated-mixes run ms): Σ/max 1.4–3.3 with repeated
 * mixes: all-shared ≤ the others (B=16, 80 % one mix: 70 / 56 / 81 ms, pack 459 / 186 / 448 ms);
 * all distinct at Σ/max 2.1 (B=4): 36 / 40 / 37 ms; 4.8 (B=8): 106 / 196 / 143 ms; 7.7 (B=16):
 * 83 / 132 / 80 ms. The shared GEMM does B·Σ work against the per-row path's B·R_max, so past
 * ≈ 3× it loses; below it, it saves the per-row path's padded inputs and its extra kernels.
 */
export const SHARED_DECODE_RANK_RATIO = 3;

/**
 * Per row: true = shared path, false = per-row path (rows with mix = null: false, they add nothing).
 *
 * Semantics: shared[i] = mixᵢ ≠ null ∧ contained(mixᵢ) ∧ (#{j : mixⱼ = mixᵢ} ≥ 2 (same object)
 *   ∨ (decode ∧ some contained mix is on ≥ 2 rows
 *      ∧ Σ_{unique contained m} m.maxRank ≤ ratio · max_{unique contained m} m.maxRank)
 *   ∨ mixᵢ is the step's only unique contained mix).
 * One mix alone (e.g. a lone prefill) is shared: Rc is then its own rank, nothing wasted, and the
 * step runs on the shared-only variant (lora-variants.ts) without the per-row path's glue.
 * Either choice gives the same y (the paths are exact); the rule only picks the cheaper layout.
 * A mix whose factors are non-finite or beyond MAX_LORA_FACTOR (lora-factors.ts) always takes the
 * per-row path, where its products only ever meet its own row (the engine refuses such mixes
 * before they are batched; this keeps the model itself safe for any caller).
 */
export function planLoraPaths(mixes: readonly (ComposedMix | null)[], decode: boolean, ratio: number = SHARED_DECODE_RANK_RATIO): boolean[] {
  const count = new Map<ComposedMix, number>();
  for (const mix of mixes) if (mix && isContainedMix(mix)) count.set(mix, (count.get(mix) ?? 0) + 1);
  let allShared = count.size === 1;
  // Only with a repeated mix (the shared path runs anyway): distinct rows alone stay per-row, where
  // their chunks are resident (lora-bank.ts) and a join packs only itself, while the shared path
  // would repack every row's factors whenever the set of mixes changes (continuous batching).
  const repeated = [...count.values()].some((n) => n >= 2);
  if (decode && !allShared && repeated) {
    let sum = 0;
    let max = 0;
    for (const mix of count.keys()) {
      sum += mix.maxRank;
      max = Math.max(max, mix.maxRank);
    }
    allShared = sum <= ratio * max;
  }
  return mixes.map((mix) => mix !== null && count.has(mix) && (allShared || count.get(mix)! >= 2));
}
