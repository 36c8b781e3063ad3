import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { decodeTokensPerSecond, loadBenchModel, prefillCaches, promptTokens, randomMix, timePrefill } from "../lib/workload.js";

/** Case 1: a hot 3-adapter mix merged into the weights runs as fast as the base model. */
export const mergedVsBase: BenchCase = {
  id: "1",
  title: "merged mix vs base",
  async run(ctx) {
    const model = await loadBenchModel(ctx.modelId);
    try {
      const mix = randomMix(model.manifest, [8, 16, 32], 101);
      ctx.progress("building the merged session");
      const merged = await model.createMerged(mix);
      const prompt = [promptTokens(model.manifest, ctx.quick ? 32 : 128)];
      const none = [null];
      const steps = ctx.quick ? 4 : 16;
      const baseCaches = await prefillCaches(model, prompt, none);
      const mergedCaches = await prefillCaches(merged, prompt, none);
      ctx.progress(`decode ${steps} steps and prefill ${prompt[0].length} tokens, base vs merged, interleaved`);
      const decode = await interleave(
        {
          base: () => decodeTokensPerSecond(model, baseCaches, none, steps),
          merged: () => decodeTokensPerSecond(merged, mergedCaches, none, steps),
        },
        ctx,
      );
      const prefill = await interleave(
        { base: () => timePrefill(model, prompt, none), merged: () => timePrefill(merged, prompt, none) },
        ctx,
      );
      await merged.dispose();
      // Ratios of time: merged ÷ base (decode time per token = 1 / tokens/s).
      const decodeRatio = pairedRatio(decode.base.samples, decode.merged.samples);
      const prefillRatio = pairedRatio(prefill.merged.samples, prefill.base.samples);
      const goal = { op: "<=" as const, target: 1.02 };
      const noise =
        "two sessions of the SAME weights (an empty merge) differ by 10–15% here (session memory placement): this machine cannot resolve 2%";
      return {
        figures: [
          figure("decode time/token merged÷base", decodeRatio.median, "×", { stats: decodeRatio, goal, note: noise }),
          figure("prefill latency merged÷base", prefillRatio.median, "×", { stats: prefillRatio, goal, note: noise }),
          figure("base decode", decode.base.stats.median, "tok/s", { stats: decode.base.stats }),
          figure("base prefill", prefill.base.stats.median, "ms", { stats: prefill.base.stats }),
          figure("merged session build", merged.buildMs.delta + merged.buildMs.session, "ms"),
        ],
      };
    } finally {
      await model.dispose();
    }
  },
};
