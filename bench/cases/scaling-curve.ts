import { writeFileSync } from "node:fs";
import path from "node:path";
import { modelCase } from "../lib/case.js";
import { asciiBars, svgLineChart } from "../lib/chart.js";
import { adapterPool, createEngine, distinctMixes, request } from "../lib/engine-workload.js";
import { figure, type Figure } from "../lib/report.js";
import { percentile, summarize } from "../lib/stats.js";
import { promptTokens } from "../lib/workload.js";

/**
 * Case 9: N concurrent streams, each with its own mix, through the engine (continuous batching).
 * Per N: decode tokens/s (completion tokens ÷ wall time, median over rounds), p99 of the
 * inter-token latency every stream observed (gaps between consecutive tokens; the first token's
 * wait is the time to first token, reported apart), and the median decode step time at that batch
 * (the scheduler's own step observations). Goal at 64 streams: p99 inter-token ≤ 3 × median decode step.
 */
export const scalingCurve = modelCase({
  id: "9",
  title: "scaling curve: concurrent streams with distinct mixes",
  async run(ctx, model) {
    const levels = ctx.streams ?? (ctx.quick ? [1, 4, 16] : [1, 2, 4, 8, 16, 32, 64]);
    const maxTokens = ctx.quick ? 8 : 16;
    const rounds = ctx.quick ? 2 : 3;
    const pool = adapterPool(model, 16, 909);
    const mixes = distinctMixes(pool, Math.max(...levels), 910);
    const prompt = promptTokens(model.manifest, 16, 9);
    const engine = createEngine(model, pool, 64);
    const curve: Array<{ streams: number; tokensPerSecond: number; p99Ms: number; p50Ms: number; ttftP99Ms: number; decodeStepMs: number }> = [];
    // The scheduler reports each step to the merge manager: listen there for decode step times.
    const decodeSteps: number[] = [];
    const onStep = engine.merges.onStep.bind(engine.merges);
    engine.merges.onStep = (o) => {
      if (o.kind === "decode") decodeSteps.push(o.ms);
      onStep(o);
    };
    for (const n of levels) {
      ctx.progress(`${n} streams × ${maxTokens} tokens, ${rounds} rounds`);
      const rates: number[] = [];
      const gaps: number[] = [];
      const firsts: number[] = [];
      decodeSteps.length = 0;
      for (let r = 0; r < rounds + 1; r++) {
        const t0 = performance.now();
        if (r === 1) decodeSteps.length = 0;
        const results = await Promise.all(
          mixes.slice(0, n).map((adapters) => {
            let last = performance.now();
            let first = true;
            return engine.generate(request(model.manifest.id, { prompt, max_tokens: maxTokens, adapters }), {
              onToken: () => {
                const now = performance.now();
                if (r > 0) (first ? firsts : gaps).push(now - last);
                first = false;
                last = now;
              },
            });
          }),
        );
        const tokens = results.reduce((s, x) => s + x.completionTokens, 0);
        if (r > 0) rates.push(tokens / ((performance.now() - t0) / 1000)); // round 0 is warm-up
      }
      curve.push({
        streams: n,
        tokensPerSecond: summarize(rates).median,
        p99Ms: percentile(gaps, 0.99),
        p50Ms: percentile(gaps, 0.5),
        ttftP99Ms: percentile(firsts, 0.99),
        decodeStepMs: percentile(decodeSteps, 0.5),
      });
    }
    const throughput = { name: "decode tokens/s", points: curve.map((c) => ({ x: c.streams, y: c.tokensPerSecond })) };
    const p99 = { name: "p99 inter-token latency", points: curve.map((c) => ({ x: c.streams, y: c.p99Ms })) };
    console.log(`\n  decode tokens/s by concurrent streams\n${asciiBars(throughput).replace(/^/gm, "  ")}`);
    console.log(`\n  p99 inter-token ms by concurrent streams\n${asciiBars(p99).replace(/^/gm, "  ")}\n`);
    const svg = svgLineChart({
      title: `loraedge ${model.manifest.id}: concurrent streams, each with its own mix`,
      xLabel: "concurrent streams (log scale)",
      left: { ...throughput, unit: "tok/s" },
      right: { ...p99, unit: "ms" },
    });
    writeFileSync(path.join(ctx.outDir, "scaling.svg"), svg);
    const figures: Figure[] = curve.flatMap((c) => [
      figure(`${c.streams} streams`, c.tokensPerSecond, "tok/s"),
      figure(`${c.streams} streams p99 inter-token`, c.p99Ms, "ms"),
      figure(`${c.streams} streams p99 time to first token`, c.ttftP99Ms, "ms"),
      figure(`${c.streams} streams median decode step`, c.decodeStepMs, "ms"),
    ]);
    const top = curve[curve.length - 1]!;
    figures.push(
      figure(`${top.streams} streams p99 inter-token ÷ median decode step`, top.p99Ms / top.decodeStepMs, "×", {
        goal: { op: "<=", target: 3 },
        note: "decode steps wait at most one prefill step sized to ≈ one decode step (scheduler prefillBudget)",
      }),
    );
    return { figures, data: { curve, plot: "scaling.svg" } };
  },
});
