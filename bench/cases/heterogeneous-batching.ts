import { createRng } from "#core/random/index";
import type { ComposedMix } from "#core/lora/types";
import { modelCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { loraRoofline, type LoraRoofline } from "../lib/lora-roofline.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio, scaleStats, summarize } from "../lib/stats.js";
import { decodeStepMs, decodeTokensPerSecond, prefillCaches, promptTokens, randomMix, unmergedTargets } from "../lib/workload.js";

/** ms per run of a bare per-row LoRA graph (t_lora), over `steps` runs. */
async function rooflineStepMs(roof: LoraRoofline, steps: number): Promise<number> {
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await roof.session.run(roof.feeds, roof.outputs);
  return (performance.now() - t0) / steps;
}

/**
 * Case 3: batches where every row has its own mix.
 * 3a "roofline": per B, efficiency = (t_base + t_lora) ÷ t_distinct: t_base the base decode step at B,
 *   t_lora a bare graph doing only the batch's per-row x·Aᵗ·Bᵗ on unpadded resident inputs
 *   (bench/lib/lora-roofline.ts), t_distinct the model's decode step with the distinct mixes.
 * 3b "realistic": B = 64, half the rows 1–3 adapters of rank 8–16 on q_proj/v_proj, half rank 16 on
 *   every projection; distinct ÷ shared tok/s (shared: one mix of each kind for its half). Beside it, in
 *   the same rounds, 3a's bare graph for the distinct mixes (t_lora: each row's x·Aᵗ·Bᵗ on unpadded
 *   resident inputs, one row per mix, so bound by reading their bytes) and what it means for the ratio:
 *   t_shared ÷ (t_shared + t_lora), the ratio if those bytes were read on top of the shared step with
 *   no overlap, and (t_shared + t_lora) ÷ t_distinct, 3a's efficiency for this batch (no goals).
 * 3c "churn": rows finishing and arriving every step, each with a distinct mix: time packing LoRA
 *   inputs ÷ total step time, after one warm-up step that fills the resident chunks (lora-bank.ts).
 *   One continuous churn cut into windows of `windowSteps` decode steps (the rounds): the figure is
 *   the median of the per-window ratios, ± IQR/2 (one 40-step sequence moved ±0.4 points run to run).
 */
export const heterogeneousBatching = modelCase({
  id: "3",
  title: "heterogeneous batching",
  async run(ctx, model) {
    const figures: Figure[] = [];
    const targets = unmergedTargets(model.manifest);
    const rng = createRng(303);
    const steps = ctx.quick ? 2 : 3;
    // 3a
    for (const B of ctx.quick ? [8] : [8, 32, 64]) {
      const distinct: ComposedMix[] = [];
      for (let i = 0; i < B; i++) {
        const terms = 1 + Math.floor(rng.nextFloat() * 3);
        const ranks = Array.from({ length: terms }, () => 8 * (1 + Math.floor(rng.nextFloat() * 4)));
        distinct.push(randomMix(model.manifest, ranks, 3000 + B * 100 + i));
      }
      const prompts = Array.from({ length: B }, (_, i) => promptTokens(model.manifest, 16, i + 1));
      const none = prompts.map(() => null);
      ctx.progress(`3a batch ${B}: base step, distinct-mix step, bare per-row LoRA graph`);
      const roof = await loraRoofline(targets, distinct);
      const distinctCaches = await prefillCaches(model, prompts, distinct);
      const baseCaches = await prefillCaches(model, prompts, none);
      try {
        const result = await interleave(
          {
            distinct: () => decodeStepMs(model, distinctCaches, distinct, steps),
            base: () => decodeStepMs(model, baseCaches, none, steps),
            lora: () => rooflineStepMs(roof, steps),
          },
          ctx,
        );
        const eff = result.distinct.samples.map((d, i) => (result.base.samples[i]! + result.lora.samples[i]!) / d);
        const sumRanks = distinct.reduce((n, m) => n + m.maxRank, 0);
        figures.push(
          figure(`3a batch ${B} (t_base + t_lora) ÷ t_distinct`, summarize(eff).median, "×", {
            stats: summarize(eff),
            goal: { op: ">=", target: 0.8 },
            note: `Σ ranks ${sumRanks}, unpadded LoRA bytes ${(roof.bytes / 1e9).toFixed(2)} GB read by the bare graph per step`,
          }),
          figure(`3a batch ${B} t_distinct`, result.distinct.stats.median, "ms", { stats: result.distinct.stats }),
          figure(`3a batch ${B} t_base`, result.base.stats.median, "ms", { stats: result.base.stats }),
          figure(`3a batch ${B} t_lora (bare graph)`, result.lora.stats.median, "ms", { stats: result.lora.stats }),
        );
      } finally {
        await roof.session.release();
      }
    }

    // 3b
    {
      const B = ctx.quick ? 8 : 64;
      const qv = (m: string) => m.endsWith("q_proj") || m.endsWith("v_proj");
      const qvMix = (seed: number) => {
        const terms = 1 + Math.floor(rng.nextFloat() * 3);
        return randomMix(model.manifest, Array.from({ length: terms }, () => 8 * (1 + Math.floor(rng.nextFloat() * 2))), seed, qv);
      };
      const allMix = (seed: number) => randomMix(model.manifest, [16], seed);
      const distinct = Array.from({ length: B }, (_, i) => (i % 2 ? allMix(5000 + i) : qvMix(5000 + i)));
      const sharedQv = qvMix(4998);
      const sharedAll = allMix(4999);
      const shared = distinct.map((_, i) => (i % 2 ? sharedAll : sharedQv));
      const prompts = Array.from({ length: B }, (_, i) => promptTokens(model.manifest, 16, i + 1));
      ctx.progress(`3b batch ${B}: realistic distinct mixes (q/v r8–16, all-linear r16) vs shared, and the bare per-row LoRA graph`);
      const distinctCaches = await prefillCaches(model, prompts, distinct);
      const sharedCaches = await prefillCaches(model, prompts, shared);
      const roof = await loraRoofline(targets, distinct);
      let result;
      try {
        result = await interleave(
          {
            distinct: () => decodeTokensPerSecond(model, distinctCaches, distinct, steps),
            shared: () => decodeTokensPerSecond(model, sharedCaches, shared, steps),
            lora: () => rooflineStepMs(roof, steps),
          },
          ctx,
        );
      } finally {
        await roof.session.release();
      }
      const ratio = pairedRatio(result.distinct.samples, result.shared.samples);
      const stepMs = (tokensPerSecond: number) => (B / tokensPerSecond) * 1000;
      const sharedMs = result.shared.samples.map(stepMs);
      const noOverlap = summarize(sharedMs.map((s, i) => s / (s + result.lora.samples[i]!)));
      const efficiency = summarize(sharedMs.map((s, i) => (s + result.lora.samples[i]!) / stepMs(result.distinct.samples[i]!)));
      figures.push(
        figure(`3b batch ${B} realistic distinct ÷ shared tok/s`, ratio.median, "×", {
          stats: ratio,
          goal: { op: ">=", target: 0.85 },
          note: "half the rows 1–3 adapters r8–16 on q/v, half r16 on every projection; shared = one mix of each kind",
        }),
        figure(`3b batch ${B} distinct`, result.distinct.stats.median, "tok/s", { stats: result.distinct.stats }),
        figure(`3b batch ${B} shared`, result.shared.stats.median, "tok/s", { stats: result.shared.stats }),
        figure(`3b batch ${B} t_lora (bare graph of the distinct mixes' per-row products)`, result.lora.stats.median, "ms", {
          stats: result.lora.stats,
          note: `unpadded LoRA bytes ${(roof.bytes / 1e9).toFixed(2)} GB read per step; one row per mix: bound by those bytes`,
        }),
        figure(`3b batch ${B} t_shared ÷ (t_shared + t_lora): the ratio if the distinct bytes were read on top, no overlap`, noOverlap.median, "×", {
          stats: noOverlap,
          note: "per round; the distinct ÷ shared figure above beats this when the engine overlaps the extra reads with the shared work",
        }),
        figure(`3b batch ${B} (t_shared + t_lora) ÷ t_distinct`, efficiency.median, "×", { stats: efficiency, note: "per round; 3a's roofline efficiency for this batch" }),
      );
    }

    // 3c
    {
      const B = ctx.quick ? 4 : 32;
      const windowSteps = ctx.quick ? 6 : 40;
      const windows = ctx.quick ? 2 : 5;
      ctx.progress(`3c churn: ${B} rows, Poisson arrivals, lengths 16–256, ${windows} windows of ${windowSteps} steps`);
      let seed = 7000;
      const fresh = () => {
        const terms = 1 + Math.floor(rng.nextFloat() * 3);
        return randomMix(model.manifest, Array.from({ length: terms }, () => 8 * (1 + Math.floor(rng.nextFloat() * 4))), seed++);
      };
      type Row = { mix: ComposedMix; cache: import("../../gpu-runner/src/model/index.js").KvCache; left: number };
      const admit = async (n: number): Promise<Row[]> => {
        if (n === 0) return [];
        const mixes = Array.from({ length: n }, fresh);
        const caches = await prefillCaches(model, mixes.map((_, i) => promptTokens(model.manifest, 16, seed + i)), mixes);
        return mixes.map((mix, i) => ({ mix, cache: caches[i]!, left: 16 + Math.floor(rng.nextFloat() * 241) }));
      };
      // Start mid-flight: each row somewhere in its length.
      let rows = (await admit(B)).map((r) => ({ ...r, left: 1 + Math.floor(rng.nextFloat() * r.left) }));
      // Warm-up: the first decode step of the B rows prefilled together packs all of them (the
      // resident bank's first fill, as one reference packing); reported apart, not in the ratio.
      const fill0 = model.timings!.loraPackMs;
      const warm = await model.step(rows.map((r) => ({ tokens: [65], cache: r.cache, mix: r.mix })));
      const fillMs = model.timings!.loraPackMs - fill0;
      rows = rows.map((r, i) => ({ ...r, cache: warm[i]!.cache }));
      const before = { ...model.timings! };
      const windowDecodeMs: number[] = [];
      const windowPackMs: number[] = [];
      let decodeMs = 0;
      let packMs = 0;
      let joined = 0;
      for (let s = 0; s < windows * windowSteps; s++) {
        if (s % windowSteps === 0) {
          windowDecodeMs.push(0);
          windowPackMs.push(0);
        }
        // Poisson arrivals with mean = the expected finishes per step, plus a refill to B.
        const lambda = rows.length / 136;
        let arrivals = 0;
        for (let p = Math.exp(-lambda), u = rng.nextFloat(), acc = p, k = 0; u > acc && k < 8; k++) {
          arrivals++;
          p *= lambda / (k + 1);
          acc += p;
        }
        arrivals = Math.max(arrivals, B - rows.length);
        rows.push(...(await admit(arrivals)));
        joined += arrivals;
        const pack0 = model.timings!.loraPackMs;
        const t0 = performance.now();
        const out = await model.step(rows.map((r) => ({ tokens: [65], cache: r.cache, mix: r.mix })));
        const stepMs = performance.now() - t0;
        const stepPackMs = model.timings!.loraPackMs - pack0;
        decodeMs += stepMs;
        packMs += stepPackMs;
        windowDecodeMs[windowDecodeMs.length - 1] += stepMs;
        windowPackMs[windowPackMs.length - 1] += stepPackMs;
        rows = rows.map((r, i) => ({ ...r, cache: out[i]!.cache, left: r.left - 1 })).filter((r) => r.left > 0);
      }
      const all = { steps: model.timings!.steps - before.steps, stepMs: model.timings!.stepMs - before.stepMs, packMs: model.timings!.loraPackMs - before.loraPackMs };
      const share = scaleStats(pairedRatio(windowPackMs, windowDecodeMs), 100);
      figures.push(
        figure("3c churn: LoRA packing ÷ decode step time", share.median, "%", {
          stats: share,
          goal: { op: "<=", target: 5 },
          note: `median of ${windows} windows of ${windowSteps} decode steps of ≈${B} rows (all ${windows * windowSteps} steps pooled: ${((100 * packMs) / decodeMs).toFixed(2)} %), ${joined} rows joined, after one warm-up step (the bank's first fill); prefill steps included: ${((100 * all.packMs) / all.stepMs).toFixed(1)} % of all step time`,
        }),
        figure("3c churn: decode step", decodeMs / (windows * windowSteps), "ms"),
        figure("3c churn: first fill of the resident chunks (warm-up step)", fillMs, "ms", { note: `the first decode step of the ${B} rows prefilled together: 0 when it reuses their prefill's feeds (the bank that prefill filled, lora-bank-pair.ts), else all ${B} rows' per-row chunks packed once` }),
      );
    }
    return { figures };
  },
});
