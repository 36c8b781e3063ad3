import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel, readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { openGlueTax } from "../lib/lora-glue-tax.js";
import { figure, type Figure } from "../lib/report.js";
import { sharedPathRoofline } from "../lib/lora-roofline.js";
import { pairedRatio, scaleStats, summarize } from "../lib/stats.js";
import { benchSessionOptions, decodeSideBySide, promptTokens, randomMix, timePrefill, unmergedTargets } from "../lib/workload.js";

/**
 * Case 2: one mix of total rank R on all seven targets, unmerged, ÷ base (the LoRA-free twin).
 * One mix alone takes the shared path, so its steps run on the shared-only variant of the LoRA
 * graph (lora-variants.ts: the per-row path's inputs and glue pruned).
 * FLOP ratio (per token, over the target projections, as the issue defines it):
 *   1 + Σ_t R·(d_in + d_out) / Σ_t d_in·d_out.
 * First, the fixed tax of the LoRA glue: one prefill at R = 0 (a mix with no modules: every LoRA
 * input fed empty) on each graph a step can run on — the shared-only and per-row-only variants and
 * the full LoRA graph — ÷ the LoRA-free twin, bare sessions of the same weights, interleaved.
 * Beside each R, in the same prefill rounds, the ceiling (lora-roofline.ts `sharedPathRoofline`): a
 * bare graph of exactly the products the FLOP ratio counts, (x·Aᵗc)·Bᵗc per target. Per round,
 * (t_base + t_bare) ÷ t_base ÷ FLOP ratio is the goal's figure if the LoRA added exactly ONNX
 * Runtime's time for its products on their own (skinny GEMMs run far below the base GEMMs'
 * GFLOP/s), and t_lora ÷ (t_base + t_bare) says whether the serving graph adds more than that.
 */
export const unmergedOverhead: BenchCase = {
  id: "2",
  title: "unmerged overhead vs FLOP share",
  async run(ctx) {
    const dir = await ensureModel(ctx.modelId);
    const { manifest } = await readModelDir(dir);
    const prompt = [promptTokens(manifest, ctx.quick ? 32 : 128)];
    const figures: Figure[] = [];

    // The LoRA glue alone: one prefill at R = 0 on each graph, bare sessions, interleaved (then released).
    ctx.progress(`R=0: prefill ${prompt[0].length} tokens on the LoRA-free, shared-only, per-row-only and full LoRA graphs, every LoRA input fed empty`);
    const glue = await openGlueTax(dir, prompt[0]);
    try {
      const tax = await interleave(glue.run, ctx);
      for (const kind of ["shared-only", "per-row-only", "full"] as const) {
        const ratio = pairedRatio(tax[kind].samples, tax["lora-free"].samples);
        figures.push(
          figure(`R=0 prefill ${kind === "full" ? "full LoRA graph" : `${kind} variant`} ÷ LoRA-free`, ratio.median, "×", {
            stats: ratio,
            note: kind === "full" ? "every target's per-row and shared glue at zero width" : `the glue the ${kind} variant keeps, at zero width`,
          }),
        );
      }
    } finally {
      await glue.release();
    }

    const model = await loadModel(dir, { backend: "node", ...benchSessionOptions(), loraVariants: "eager" });
    try {
      const targets = unmergedTargets(model.manifest);
      const dense = targets.reduce((s, t) => s + t.in * t.out, 0);
      const perRank = targets.reduce((s, t) => s + t.in + t.out, 0);
      const steps = ctx.quick ? 4 : 16;
      const ranks = ctx.quick ? [8, 32] : [8, 32, 128];

      for (const R of ranks) {
        // R as one adapter of rank R (the mix's total rank is what the graph sees).
        const mix = randomMix(model.manifest, [R], 200 + R);
        const flopRatio = 1 + (R * perRank) / dense;
        ctx.progress(`R=${R}: prefill ${prompt[0].length} tokens base vs unmerged vs the bare LoRA products, then decode ${steps} steps`);
        // The ceiling, measured in the same rounds: ONNX Runtime's own time for exactly the LoRA
        // products the FLOP ratio counts, on a bare graph (no mask, no Add, no model around them).
        const bare = await sharedPathRoofline(mix, prompt[0].length);
        let prefill;
        try {
          prefill = await interleave(
            {
              base: () => timePrefill(model, prompt, [null]),
              lora: () => timePrefill(model, prompt, [mix]),
              bareProducts: async () => {
                const t0 = performance.now();
                await bare.session.run(bare.feeds, bare.outputs);
                return performance.now() - t0;
              },
            },
            ctx,
          );
        } finally {
          await bare.session.release();
        }
        const { decode } = await decodeSideBySide({ base: { variant: model, mixes: [null] }, lora: { variant: model, mixes: [mix] } }, prompt, steps, ctx);
        const prefillRatio = pairedRatio(prefill.lora.samples, prefill.base.samples);
        const decodeRatio = pairedRatio(decode.base.samples, decode.lora.samples);
        const n = prefill.base.samples.length;
        const perRound = (f: (i: number) => number) => summarize(Array.from({ length: n }, (_, i) => f(i)));
        const { base, lora, bareProducts } = { base: prefill.base.samples, lora: prefill.lora.samples, bareProducts: prefill.bareProducts.samples };
        // Per round: what the goal's figure would be if the LoRA cost only its bare products' time.
        const ceiling = perRound((i) => (base[i] + bareProducts[i]) / base[i] / flopRatio);
        const overCeiling = perRound((i) => lora[i] / (base[i] + bareProducts[i]));
        const bareGflops = bare.flops / 1e9 / (prefill.bareProducts.stats.median / 1000);
        const baseGflops = (2 * prompt[0].length * dense) / 1e9 / (prefill.base.stats.median / 1000);
        figures.push(
          figure(`R=${R} FLOP ratio`, flopRatio, "×"),
          figure(`R=${R} prefill ÷ base ÷ FLOP ratio`, prefillRatio.median / flopRatio, "×", {
            stats: scaleStats(prefillRatio, 1 / flopRatio),
            goal: { op: "<=", target: 1.1 },
            note: `prefill ${prefillRatio.median.toFixed(2)}× base vs ${flopRatio.toFixed(2)}× FLOPs: shared path (x·Ac, mask, ·Bc, Add) per target on the shared-only variant`,
          }),
          figure(`R=${R} ceiling: (base + bare LoRA products) ÷ base ÷ FLOP ratio`, ceiling.median, "×", {
            stats: ceiling,
            note: `the goal's figure if the LoRA added exactly ORT's time for its ${mix.modules.size} × 2 MatMuls on a bare graph (same rounds); ${bareGflops.toFixed(1)} GFLOP/s there vs ${baseGflops.toFixed(1)} GFLOP/s for the base prefill over its target projections (a lower bound: attention and lm_head in its time)`,
          }),
          figure(`R=${R} prefill ÷ (base + bare LoRA products)`, overCeiling.median, "×", {
            stats: overCeiling,
            note: "below 1: the LoRA inside the serving graph costs less than its products alone on a bare graph (the implementation is at ORT's own speed for them); above 1: glue beyond them (mask, Adds, node count)",
          }),
          figure(`R=${R} bare LoRA products`, prefill.bareProducts.stats.median, "ms", { stats: prefill.bareProducts.stats }),
          figure(`R=${R} decode time ÷ base`, decodeRatio.median, "×", {
            stats: decodeRatio,
            note: "decode is memory-bound: reads R·(d_in+d_out) extra floats per target per row",
          }),
        );
      }
      return { figures };
    } finally {
      await model.dispose();
    }
  },
};
