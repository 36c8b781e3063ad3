import { createRng } from "#core/random/index";
import type { ComposedMix } from "#core/lora/types";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { decodeTokensPerSecond, loadBenchModel, prefillCaches, promptTokens, randomMix } from "../lib/workload.js";

/**
 * Case 3: a decode batch where every row has its own mix (1–3 adapters of rank 8–32) vs the same
 * batch where every row shares one mix (the distinct mix of median total rank, so both batches
 * do comparable FLOPs per row). Figure: tokens/s distinct ÷ shared.
 */
export const heterogeneousBatching: BenchCase = {
  id: "3",
  title: "heterogeneous batching",
  async run(ctx) {
    const model = await loadBenchModel(ctx.modelId);
    const figures: Figure[] = [];
    try {
      const rng = createRng(303);
      const batches = ctx.quick ? [8] : [8, 32, 64];
      const steps = ctx.quick ? 2 : 4;
      for (const B of batches) {
        const distinct: ComposedMix[] = [];
        for (let i = 0; i < B; i++) {
          const terms = 1 + Math.floor(rng.nextFloat() * 3);
          const ranks = Array.from({ length: terms }, () => 8 * (1 + Math.floor(rng.nextFloat() * 4)));
          distinct.push(randomMix(model.manifest, ranks, 3000 + B * 100 + i));
        }
        const byRank = [...distinct].sort((a, b) => a.maxRank - b.maxRank);
        const sharedMix = byRank[Math.floor(B / 2)];
        const shared = Array.from({ length: B }, () => sharedMix);
        const prompts = Array.from({ length: B }, (_, i) => promptTokens(model.manifest, 16, i + 1));
        ctx.progress(`batch ${B}: ${steps} decode steps, distinct mixes vs one shared mix`);
        const none = prompts.map(() => null);
        const distinctCaches = await prefillCaches(model, prompts, distinct);
        const sharedCaches = await prefillCaches(model, prompts, shared);
        const baseCaches = await prefillCaches(model, prompts, none);
        const result = await interleave(
          {
            distinct: () => decodeTokensPerSecond(model, distinctCaches, distinct, steps),
            shared: () => decodeTokensPerSecond(model, sharedCaches, shared, steps),
            base: () => decodeTokensPerSecond(model, baseCaches, none, steps),
          },
          ctx,
        );
        const versusBase = pairedRatio(result.distinct.samples, result.base.samples);
        const ratio = pairedRatio(result.distinct.samples, result.shared.samples);
        const maxR = Math.max(...distinct.map((m) => m.maxRank));
        figures.push(
          figure(`batch ${B} distinct÷shared tok/s`, ratio.median, "×", {
            stats: ratio,
            goal: { op: ">=", target: 0.8 },
            note: `each distinct mix is read per row (per-row path, padded to the batch max R=${maxR}); the shared mix (R=${sharedMix.maxRank}) once per step (shared path). Decode is memory-bound and one mix is ≈7% of a 100M model's bytes, so B distinct mixes cost ≈B×7% more traffic`,
          }),
          figure(`batch ${B} distinct÷base (no adapters) tok/s`, versusBase.median, "×", {
            stats: versusBase,
            note: "per-row At/Bt of every distinct mix, copied each step and padded to the batch max R; the base batch feeds none",
          }),
          figure(`batch ${B} distinct`, result.distinct.stats.median, "tok/s", { stats: result.distinct.stats }),
          figure(`batch ${B} shared`, result.shared.stats.median, "tok/s", { stats: result.shared.stats }),
          figure(`batch ${B} base`, result.base.stats.median, "tok/s", { stats: result.base.stats }),
        );
      }
      return { figures };
    } finally {
      await model.dispose();
    }
  },
};
