import type { BenchCase } from "../lib/case.js";
import { figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { loadBenchModel, prefillAndDecode, promptTokens, randomMix } from "../lib/workload.js";

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
      const { prefill, decode } = await prefillAndDecode({ node: { variant: node, mixes: [mix] }, web: { variant: web, mixes: [mix] } }, prompt, steps, ctx);
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
