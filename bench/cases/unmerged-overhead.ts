import { modelCase } from "../lib/case.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio, scaleStats } from "../lib/stats.js";
import { prefillAndDecode, promptTokens, randomMix, unmergedTargets } from "../lib/workload.js";

/**
 * Case 2: one mix of total rank R on all seven targets, unmerged (At/Bt fed per row), ÷ base.
 * FLOP ratio (per token, over the target projections, as the issue defines it):
 *   1 + Σ_t R·(d_in + d_out) / Σ_t d_in·d_out.
 */
export const unmergedOverhead = modelCase({
  id: "2",
  title: "unmerged overhead vs FLOP share",
  async run(ctx, model) {
    const targets = unmergedTargets(model.manifest);
    const dense = targets.reduce((s, t) => s + t.in * t.out, 0);
    const perRank = targets.reduce((s, t) => s + t.in + t.out, 0);
    const prompt = [promptTokens(model.manifest, ctx.quick ? 32 : 128)];
    const steps = ctx.quick ? 4 : 16;
    const ranks = ctx.quick ? [8, 32] : [8, 32, 128];
    const figures: Figure[] = [];
    for (const R of ranks) {
      // R as one adapter of rank R (the mix's total rank is what the graph sees).
      const mix = randomMix(model.manifest, [R], 200 + R);
      const flopRatio = 1 + (R * perRank) / dense;
      ctx.progress(`R=${R}: prefill ${prompt[0].length} tokens and decode ${steps} steps, base vs unmerged`);
      const { prefill, decode } = await prefillAndDecode({ base: { variant: model, mixes: [null] }, lora: { variant: model, mixes: [mix] } }, prompt, steps, ctx);
      const prefillRatio = pairedRatio(prefill.lora.samples, prefill.base.samples);
      const decodeRatio = pairedRatio(decode.base.samples, decode.lora.samples);
      figures.push(
        figure(`R=${R} FLOP ratio`, flopRatio, "×"),
        figure(`R=${R} prefill ÷ base ÷ FLOP ratio`, prefillRatio.median / flopRatio, "×", {
          stats: scaleStats(prefillRatio, 1 / flopRatio),
          goal: { op: "<=", target: 1.1 },
          note: `prefill ${prefillRatio.median.toFixed(2)}× base vs ${flopRatio.toFixed(2)}× FLOPs: two extra small GEMMs per target plus packing At/Bt`,
        }),
        figure(`R=${R} decode time ÷ base`, decodeRatio.median, "×", {
          stats: decodeRatio,
          note: "decode is memory-bound: reads R·(d_in+d_out) extra floats per target per row",
        }),
      );
    }
    return { figures };
  },
});
