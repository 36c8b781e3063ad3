import { writeFileSync } from "node:fs";
import path from "node:path";
import { modelCase } from "../lib/case.js";
import { asciiBars, svgLineChart } from "../lib/chart.js";
import { adapterPool, createEngine, distinctMixes, request } from "../lib/engine-workload.js";
import { figure, type Figure } from "../lib/report.js";
import { percentile, summarize } from "../lib/stats.js";
import { promptTokens } from "../lib/workload.js";
import { breakDownGap, meanBreakdown, recordTimeline, type GapBreakdown } from "../lib/step-timeline.js";

/**
 * Case 9: N concurrent streams, each with its own mix, through the engine (continuous batching).
 * Per N: decode tokens/s (completion tokens ÷ wall time, median over rounds), p99 of the
 * inter-token latency every stream observed (gaps between consecutive tokens; the first token's
 * wait is the time to first token, reported apart), and the median decode step time at that batch
 * (the scheduler's own step observations). Goal at 64 streams: p99 inter-token ≤ 3 × median decode step.
 * Beside it, from a timeline of the same rounds (lib/step-timeline.ts): what the gaps ≥ p99 were made
 * of (decode and prefill steps, the LoRA packing inside them, GC, time outside steps), how rows were
 * admitted (prefill steps per round, rows per step), the most LoRA floats one decode step packed, and,
 * when some row was prefilled alone, the alternation floor: median decode step + that prompt's
 * prefill step, ÷ median decode step.
 * `BENCH_CASE9_TRACE=1` also writes each level's timeline to the output folder.
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
    const timeline = recordTimeline(engine, model);
    const tails: Array<{
      streams: number;
      gap: GapBreakdown;
      top: GapBreakdown[];
      onePromptMs: number;
      admission: { stepsPerRound: number; rowsPerStep: number };
      pack: { decodeMaxFloats: number; prefillMaxFloats: number };
    }> = [];
    for (const n of levels) {
      ctx.progress(`${n} streams × ${maxTokens} tokens, ${rounds} rounds`);
      const memoryAtStart = process.memoryUsage();
      const rates: number[] = [];
      const gaps: number[] = [];
      const spans: Array<[number, number]> = [];
      timeline.events.length = 0;
      const firsts: number[] = [];
      decodeSteps.length = 0;
      let measuredFrom = 0;
      for (let r = 0; r < rounds + 1; r++) {
        const t0 = performance.now();
        if (r === 1) {
          decodeSteps.length = 0;
          measuredFrom = t0;
        }
        const results = await Promise.all(
          mixes.slice(0, n).map((adapters) => {
            let last = performance.now();
            let first = true;
            return engine.generate(request(model.manifest.id, { prompt, max_tokens: maxTokens, adapters }), {
              onToken: () => {
                const now = performance.now();
                if (r > 0) (first ? firsts : gaps).push(now - last);
                if (r > 0 && !first) spans.push([last, now]);
                first = false;
                last = now;
              },
            });
          }),
        );
        const tokens = results.reduce((s, x) => s + x.completionTokens, 0);
        if (r > 0) rates.push(tokens / ((performance.now() - t0) / 1000)); // round 0 is warm-up
      }
      // The gaps at and above p99: what ran in them. And the smallest prefill step a joining row can
      // take (its whole 16-token prompt alone), measured in the same rounds.
      const p99Gap = percentile(gaps, 0.99);
      const top = spans.filter(([a, b]) => b - a >= p99Gap).map(([a, b]) => breakDownGap(timeline.events, a, b));
      const onePrompt = timeline.events.filter((e) => e.start >= measuredFrom && e.kind === "prefill" && e.rows === 1 && e.promptTokens === prompt.length);
      const onePromptMs = onePrompt.length ? percentile(onePrompt.map((e) => e.end - e.start), 0.5) : NaN;
      // How rows joined (prefill steps and their rows, per round) and the most LoRA floats one decode step wrote
      // (a joining row writes its own chunks; rows that stayed are resident: lora-bank.ts, lora-bank-pair.ts).
      const measured = timeline.events.filter((e) => e.start >= measuredFrom);
      const prefills = measured.filter((e) => e.kind === "prefill" || e.kind === "mixed");
      const admission = { stepsPerRound: prefills.length / rounds, rowsPerStep: prefills.reduce((s, e) => s + (e.rows ?? 0), 0) / Math.max(1, prefills.length) };
      const packFloats = (kind: string) => Math.max(0, ...measured.filter((e) => e.kind === kind).map((e) => e.packFloats ?? 0));
      const pack = { decodeMaxFloats: packFloats("decode"), prefillMaxFloats: packFloats("prefill") };
      tails.push({ streams: n, gap: meanBreakdown(top), top: top.sort((x, y) => y.ms - x.ms).slice(0, 5), onePromptMs, admission, pack });
      if (process.env.BENCH_CASE9_TRACE) {
        console.log(JSON.stringify({ streams: n, memoryAtStart, p99Gap, mean: meanBreakdown(top), top: tails.at(-1)!.top }));
        writeFileSync(path.join(ctx.outDir, `case9-trace-${n}.json`), JSON.stringify({ spans, events: timeline.events }));
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
    timeline.stop();
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
    const tail = tails[tails.length - 1]!;
    const parts = tail.gap.parts;
    const floor = (top.decodeStepMs + tail.onePromptMs) / top.decodeStepMs;
    const r0 = (x: number) => Math.round(x);
    figures.push(
      figure(`${top.streams} streams p99 inter-token ÷ median decode step`, top.p99Ms / top.decodeStepMs, "×", {
        goal: { op: "<=", target: 3 },
        note:
          `prefill steps per round ${tail.admission.stepsPerRound.toFixed(1)} of ${tail.admission.rowsPerStep.toFixed(1)} rows on average (streams submitted together are admitted and prefilled together; ` +
          `a row joining while others decode takes what the prefill budget leaves: scheduler prefillBudget); the gaps ≥ p99 ` +
          `(mean ${r0(tail.gap.ms)} ms, ${tail.gap.steps.toFixed(1)} steps) held decode ${r0(parts.decode)} ms + prefill ${r0(parts.prefill + parts.mixed)} ms ` +
          `(LoRA packing ${r0(parts.pack)} ms inside them), outside steps ${r0(parts.compose + parts.other)} ms` +
          (Number.isFinite(floor) ? "; alternation floor below" : "; no row was prefilled alone in these rounds, so no alternation floor"),
      }),
      figure(`${top.streams} streams p99 gaps: decode step part`, parts.decode, "ms"),
      figure(`${top.streams} streams p99 gaps: prefill step part`, parts.prefill + parts.mixed, "ms"),
      figure(`${top.streams} streams p99 gaps: LoRA packing inside those steps`, parts.pack, "ms", { note: "joining rows' chunks written into the resident banks (lora-bank.ts, lora-bank-pair.ts)" }),
      figure(`${top.streams} streams largest LoRA packing in one decode step`, tail.pack.decodeMaxFloats / 1e6, "M floats", {
        note: `a decode step writes only the rows that joined since the last one (the rest stay resident); for scale, the largest prefill step wrote ${(tail.pack.prefillMaxFloats / 1e6).toFixed(1)} M floats`,
      }),
      figure(`${top.streams} streams p99 gaps: outside model steps`, parts.compose + parts.other, "ms", { note: "composing mixes, sampling, callbacks: the event loop between steps" }),
      figure(`${top.streams} streams p99 gaps: GC pauses`, parts.gc, "ms", { note: "inside a step (then also in its part above) or between steps (then not in 'outside model steps')" }),
    );
    if (Number.isFinite(floor)) {
      figures.push(
        figure(`${top.streams} streams one row's prompt alone (prefill step)`, tail.onePromptMs, "ms"),
        figure(`${top.streams} streams alternation floor (median decode step + one row's prefill) ÷ median decode step`, floor, "×", {
          note: "the smallest gap a stream can see while another row joins when decode and prefill steps alternate, both measured in the same rounds",
        }),
      );
    }
    return { figures, data: { curve, tails, plot: "scaling.svg" } };
  },
});
