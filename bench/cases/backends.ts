import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { decodeTokensPerSecond, loadBenchModel, prefillCaches, promptTokens, randomMix, timePrefill } from "../lib/workload.js";

/** Case 7: the same model, mix and inputs on onnxruntime-web (wasm) vs onnxruntime-node (CPU EP). */
export const backends: BenchCase = {
  id: "7",
  title: "backends: web (wasm) vs node",
  async run(ctx) {
    const node = await loadBenchModel(ctx.modelId, "node");
    const web = await loadBenchModel(ctx.modelId, "web");
    try {
      const mix = randomMix(node.manifest, [16], 707);
      const prompt = [promptTokens(node.manifest, ctx.quick ? 32 : 128)];
      const steps = ctx.quick ? 4 : 8;
      ctx.progress(`prefill ${prompt[0].length} tokens and ${steps} decode steps with a rank-16 mix on both backends`);
      const prefill = await interleave(
        { node: () => timePrefill(node, prompt, [mix]), web: () => timePrefill(web, prompt, [mix]) },
        ctx,
      );
      const nodeCaches = await prefillCaches(node, prompt, [mix]);
      const webCaches = await prefillCaches(web, prompt, [mix]);
      const decode = await interleave(
        {
          node: () => decodeTokensPerSecond(node, nodeCaches, [mix], steps),
          web: () => decodeTokensPerSecond(web, webCaches, [mix], steps),
        },
        ctx,
      );
      const prefillRatio = pairedRatio(prefill.web.samples, prefill.node.samples);
      const decodeRatio = pairedRatio(decode.node.samples, decode.web.samples);
      return {
        figures: [
          figure("prefill time web÷node", prefillRatio.median, "×", { stats: prefillRatio }),
          figure("decode time web÷node", decodeRatio.median, "×", { stats: decodeRatio }),
          figure("node decode", decode.node.stats.median, "tok/s", { stats: decode.node.stats }),
          figure("web decode", decode.web.stats.median, "tok/s", { stats: decode.web.stats }),
        ],
      };
    } finally {
      await Promise.all([node.dispose(), web.dispose()]);
    }
  },
};
