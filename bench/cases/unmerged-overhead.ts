import type { ComposedMix } from "#core/lora/types";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio, scaleStats } from "../lib/stats.js";
import { THREADS, prefillAndDecode, promptTokens, randomMix, unmergedTargets } from "../lib/workload.js";

/**
 * Case 2: one mix of total rank R on all seven targets, unmerged, ÷ base (the LoRA-free twin).
 * One mix alone takes the shared path, so its steps run on the shared-only variant of the LoRA
 * graph (lora-variants.ts: the per-row path's inputs and glue pruned).
 * FLOP ratio (per token, over the target projections, as the issue defines it):
 *   1 + Σ_t R·(d_in + d_out) / Σ_t d_in·d_out.
 * Beside it, in the same rounds, the fixed tax of the LoRA glue at R = 0 (a mix with no modules:
 * every LoRA input fed empty) ÷ base: on the shared-only variant the serving model uses, and on
 * the full LoRA graph (a second model loaded with `loraVariants: "off"`).
 */
export const unmergedOverhead: BenchCase = {
  id: "2",
  title: "unmerged overhead vs FLOP share",
  async run(ctx) {
    const dir = await ensureModel(ctx.modelId);
    const model = await loadModel(dir, { backend: "node", threads: THREADS, loraVariants: "eager" });
    const fullGraph = await loadModel(dir, { backend: "node", threads: THREADS, loraVariants: "off", plainSession: false });
    try {
      const targets = unmergedTargets(model.manifest);
      const dense = targets.reduce((s, t) => s + t.in * t.out, 0);
      const perRank = targets.reduce((s, t) => s + t.in + t.out, 0);
      const prompt = [promptTokens(model.manifest, ctx.quick ? 32 : 128)];
      const steps = ctx.quick ? 4 : 16;
      const ranks = ctx.quick ? [8, 32] : [8, 32, 128];
      const figures: Figure[] = [];

      const empty: ComposedMix = { modules: new Map(), maxRank: 0 };
      ctx.progress(`R=0: prefill ${prompt[0].length} tokens and decode ${steps} steps: base vs the shared-only variant vs the full LoRA graph, all fed empty`);
      const tax = await prefillAndDecode(
        { base: { variant: model, mixes: [null] }, variant: { variant: model, mixes: [empty] }, full: { variant: fullGraph, mixes: [empty] } },
        prompt,
        steps,
        ctx,
      );
      for (const [side, label] of [["variant", "shared-only variant"], ["full", "full LoRA graph"]] as const) {
        const prefillTax = pairedRatio(tax.prefill[side].samples, tax.prefill.base.samples);
        const decodeTax = pairedRatio(tax.decode.base.samples, tax.decode[side].samples);
        figures.push(
          figure(`R=0 prefill ${label} ÷ base`, prefillTax.median, "×", { stats: prefillTax, note: "the LoRA glue alone, every LoRA input fed empty" }),
          figure(`R=0 decode time ${label} ÷ base`, decodeTax.median, "×", { stats: decodeTax }),
        );
      }

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
            note: `prefill ${prefillRatio.median.toFixed(2)}× base vs ${flopRatio.toFixed(2)}× FLOPs: shared path (x·Ac, mask, ·Bc, Add) per target on the shared-only variant`,
          }),
          figure(`R=${R} decode time ÷ base`, decodeRatio.median, "×", {
            stats: decodeRatio,
            note: "decode is memory-bound: reads R·(d_in+d_out) extra floats per target per row",
          }),
        );
      }
      return { figures };
    } finally {
      await model.dispose();
      await fullGraph.dispose();
    }
  },
};
