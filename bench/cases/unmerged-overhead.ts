import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel, readModelDir } from "../../gpu-runner/src/model/index.js";
import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { openGlueTax } from "../lib/lora-glue-tax.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio, scaleStats } from "../lib/stats.js";
import { THREADS, prefillAndDecode, promptTokens, randomMix, unmergedTargets } from "../lib/workload.js";

/**
 * Case 2: one mix of total rank R on all seven targets, unmerged, ÷ base (the LoRA-free twin).
 * One mix alone takes the shared path, so its steps run on the shared-only variant of the LoRA
 * graph (lora-variants.ts: the per-row path's inputs and glue pruned).
 * FLOP ratio (per token, over the target projections, as the issue defines it):
 *   1 + Σ_t R·(d_in + d_out) / Σ_t d_in·d_out.
 * First, the fixed tax of the LoRA glue: one prefill at R = 0 (a mix with no modules: every LoRA
 * input fed empty) on each graph a step can run on — the shared-only and per-row-only variants and
 * the full LoRA graph — ÷ the LoRA-free twin, bare sessions of the same weights, interleaved.
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

    const model = await loadModel(dir, { backend: "node", threads: THREADS, loraVariants: "eager" });
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
    }
  },
};
