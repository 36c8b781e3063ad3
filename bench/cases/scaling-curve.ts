import { writeFileSync } from "node:fs";
import path from "node:path";
import { createRng, deriveSeed } from "#core/random/index";
import { modelCase } from "../lib/case.js";
import { asciiBars, svgLineChart } from "../lib/chart.js";
import { adapterPool, createEngine, distinctMixes, request } from "../lib/engine-workload.js";
import { figure, type Figure } from "../lib/report.js";
import { percentile, summarize } from "../lib/stats.js";
import { promptTokens } from "../lib/workload.js";
import { breakDownGap, meanBreakdown, recordTimeline, type GapBreakdown, type Timeline } from "../lib/step-timeline.js";
import type { BaseModel } from "../../gpu-runner/src/model/index.js";
import type { ModelEngine } from "../../gpu-runner/src/engine/index.js";
import type { GenerateRequestInput } from "#core/wire/runner-api";
import type { BenchContext } from "../lib/case.js";

/**
 * Mean spacing (ms) of the staggered level's seeded Poisson arrivals: 64 streams over ≈ 5 s. While rows
 * decode, a prefill step admits what the scheduler's token budget leaves (≈ 2–3 of these 16-token prompts
 * per iteration at 30 decoding rows), so arrivals faster than that queue and show up in the time to first token.
 */
const STAGGER_MEAN_MS = 80;

/** One measured level: the curve's point and what its slow gaps held. */
interface LevelResult {
  streams: number;
  tokensPerSecond: number;
  p99Ms: number;
  p50Ms: number;
  ttftP99Ms: number;
  decodeStepMs: number;
  /** Decode steps' median rows (the batch a stream decoded in). */
  decodeRows: number;
  tail: {
    gap: GapBreakdown;
    top: GapBreakdown[];
    onePromptMs: number;
    admission: { stepsPerRound: number; rowsPerStep: number };
    pack: { decodeMaxFloats: number; prefillMaxFloats: number };
  };
}

/**
 * Case 9: N concurrent streams, each with its own mix, through the engine (continuous batching).
 * Per N: decode tokens/s (completion tokens ÷ wall time, median over rounds), p99 of the
 * inter-token latency every stream observed (gaps between consecutive tokens; the first token's
 * wait is the time to first token, reported apart), and the median decode step time at that batch
 * (the scheduler's own step observations). Goal at 64 streams: p99 inter-token ≤ 3 × median decode step.
 * The curve's streams arrive as one burst (submitted together: the scheduler admits and prefills them
 * together); a staggered level beside it (64 streams, seeded Poisson arrivals, mean spacing
 * STAGGER_MEAN_MS) makes prompts join while others decode, the case the burst no longer exercises: its
 * gaps then hold a prefill step between decode steps (the scheduler's prefillBudget bounds it).
 * Beside each, from a timeline of the same rounds (lib/step-timeline.ts): what the gaps ≥ p99 were made
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
    const staggered = ctx.quick ? 16 : 64;
    const pool = adapterPool(model, 16, 909);
    const mixes = distinctMixes(pool, Math.max(...levels, staggered), 910);
    const engine = createEngine(model, pool, 64);
    // The scheduler reports each step to the merge manager: listen there for decode step times.
    const decodeSteps: Array<{ ms: number; rows: number }> = [];
    const onStep = engine.merges.onStep.bind(engine.merges);
    engine.merges.onStep = (o) => {
      if (o.kind === "decode") decodeSteps.push({ ms: o.ms, rows: o.rows });
      onStep(o);
    };
    const timeline = recordTimeline(engine, model);
    const run = { ctx, model, engine, mixes, timeline, decodeSteps };
    const curve: LevelResult[] = [];
    let stagger: LevelResult | null = null;
    try {
      for (const n of levels) curve.push(await measureLevel(run, n, null));
      if (!ctx.streams || ctx.streams.includes(staggered)) stagger = await measureLevel(run, staggered, STAGGER_MEAN_MS);
    } finally {
      timeline.stop();
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
    const tail = top.tail;
    const parts = tail.gap.parts;
    const r0 = (x: number) => Math.round(x);
    figures.push(
      figure(`${top.streams} streams p99 inter-token ÷ median decode step`, top.p99Ms / top.decodeStepMs, "×", {
        goal: { op: "<=", target: 3 },
        note:
          `prefill steps per round ${tail.admission.stepsPerRound.toFixed(1)} of ${tail.admission.rowsPerStep.toFixed(1)} rows on average (streams submitted together are admitted and prefilled together; ` +
          `a row joining while others decode takes what the prefill budget leaves: scheduler prefillBudget, see the staggered level); the gaps ≥ p99 ` +
          `(mean ${r0(tail.gap.ms)} ms, ${tail.gap.steps.toFixed(1)} steps) held ${gapParts(tail.gap)}` +
          (Number.isFinite(alternationFloor(top)) ? "; alternation floor below" : "; no row was prefilled alone in these rounds, so no alternation floor"),
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
    if (Number.isFinite(alternationFloor(top))) {
      figures.push(
        figure(`${top.streams} streams one row's prompt alone (prefill step)`, tail.onePromptMs, "ms"),
        figure(`${top.streams} streams alternation floor (median decode step + one row's prefill) ÷ median decode step`, alternationFloor(top), "×", {
          note: "the smallest gap a stream can see while another row joins when decode and prefill steps alternate, both measured in the same rounds",
        }),
      );
    }
    if (stagger) figures.push(...staggeredFigures(stagger));
    return { figures, data: { curve: curve.map(({ tail: _, ...point }) => point), tails: curve.map((c) => ({ streams: c.streams, ...c.tail })), staggered: stagger, staggerMeanMs: STAGGER_MEAN_MS, plot: "scaling.svg" } };
  },
});

/** The staggered level's figures: beside the burst's, no goal of its own (the goal stays on the burst level). */
function staggeredFigures(s: LevelResult): Figure[] {
  const name = `${s.streams} streams staggered`;
  const ratio = s.p99Ms / s.decodeStepMs;
  const floor = alternationFloor(s);
  const { admission } = s.tail;
  return [
    figure(`${name} p99 inter-token ÷ median decode step`, ratio, "×", {
      note:
        `seeded Poisson arrivals, mean spacing ${STAGGER_MEAN_MS} ms (≈ ${((s.streams * STAGGER_MEAN_MS) / 1000).toFixed(1)} s): prompts join while others decode; ` +
        `decode steps of median ${s.decodeRows} rows; ${admission.stepsPerRound.toFixed(1)} prefill steps per round of ${admission.rowsPerStep.toFixed(1)} rows; ` +
        `the gaps ≥ p99 (mean ${Math.round(s.tail.gap.ms)} ms, ${s.tail.gap.steps.toFixed(1)} steps) held ${gapParts(s.tail.gap)}` +
        (Number.isFinite(floor) ? `; alternation floor ${floor.toFixed(2)}×` : ""),
    }),
    figure(`${name}`, s.tokensPerSecond, "tok/s", { note: "completion tokens ÷ wall time from the first arrival to the last token: bounded by the arrival rate" }),
    figure(`${name} p99 inter-token`, s.p99Ms, "ms"),
    figure(`${name} p99 time to first token`, s.ttftP99Ms, "ms", { note: "from each request's own arrival" }),
    figure(`${name} median decode step`, s.decodeStepMs, "ms"),
  ];
}

/**
 * What a slow gap held. Compositions run on the event loop: beside a step (ORT computes on its own threads) they
 * delay its end, so their time can overlap the steps' and is named apart; `other`: covered by nothing recorded.
 */
function gapParts(g: GapBreakdown): string {
  const p = g.parts;
  const r0 = (x: number) => Math.round(x);
  return `decode ${r0(p.decode)} ms + prefill ${r0(p.prefill + p.mixed)} ms (LoRA packing ${r0(p.pack)} ms inside them), mix compositions on the event loop ${r0(p.compose)} ms (also during the steps), other ${r0(p.other)} ms, GC ${r0(p.gc)} ms`;
}

/** (median decode step + one row's prompt prefilled alone) ÷ median decode step; NaN when no row was prefilled alone. */
function alternationFloor(level: LevelResult): number {
  return (level.decodeStepMs + level.tail.onePromptMs) / level.decodeStepMs;
}

/** When each stream is submitted, ms after its round starts: all at 0 (a burst), or seeded Poisson arrivals of this mean spacing. */
export function arrivalOffsets(streams: number, meanSpacingMs: number | null, seed: number): number[] {
  if (meanSpacingMs === null) return new Array<number>(streams).fill(0);
  const rng = createRng(seed);
  let t = 0;
  return Array.from({ length: streams }, (_, i) => {
    if (i > 0) t += -Math.log(1 - rng.nextFloat()) * meanSpacingMs;
    return t;
  });
}

const sleepUntil = (at: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, at - performance.now())));

/**
 * One level: `rounds` measured rounds (after one warm-up) of `n` streams of 16-token prompts × `maxTokens`,
 * each with its own mix, submitted at `arrivalOffsets` (a burst when `meanSpacingMs` is null).
 */
async function measureLevel(
  run: { ctx: BenchContext; model: BaseModel; engine: ModelEngine; mixes: GenerateRequestInput["adapters"][]; timeline: Timeline; decodeSteps: Array<{ ms: number; rows: number }> },
  n: number,
  meanSpacingMs: number | null,
): Promise<LevelResult> {
  const { ctx, model, engine, mixes, timeline, decodeSteps } = run;
  const maxTokens = ctx.quick ? 8 : 16;
  const rounds = ctx.quick ? 2 : 3;
  const prompt = promptTokens(model.manifest, 16, 9);
  ctx.progress(`${n} streams × ${maxTokens} tokens, ${meanSpacingMs === null ? "one burst" : `Poisson arrivals every ${meanSpacingMs} ms on average`}, ${rounds} rounds`);
  const memoryAtStart = process.memoryUsage();
  const rates: number[] = [];
  const gaps: number[] = [];
  const spans: Array<[number, number]> = [];
  timeline.events.length = 0;
  const firsts: number[] = [];
  decodeSteps.length = 0;
  let measuredFrom = 0;
  for (let r = 0; r < rounds + 1; r++) {
    const offsets = arrivalOffsets(n, meanSpacingMs, deriveSeed(919, n, r));
    const t0 = performance.now();
    if (r === 1) {
      decodeSteps.length = 0;
      measuredFrom = t0;
    }
    const results = await Promise.all(
      mixes.slice(0, n).map(async (adapters, i) => {
        if (offsets[i] > 0) await sleepUntil(t0 + offsets[i]);
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
  const tail = { gap: meanBreakdown(top), top: top.sort((x, y) => y.ms - x.ms).slice(0, 5), onePromptMs, admission, pack };
  if (process.env.BENCH_CASE9_TRACE) {
    const label = meanSpacingMs === null ? `${n}` : `${n}-staggered`;
    console.log(JSON.stringify({ streams: n, meanSpacingMs, memoryAtStart, p99Gap, mean: tail.gap, top: tail.top }));
    writeFileSync(path.join(ctx.outDir, `case9-trace-${label}.json`), JSON.stringify({ spans, events: timeline.events }));
  }
  return {
    streams: n,
    tokensPerSecond: summarize(rates).median,
    p99Ms: p99Gap,
    p50Ms: percentile(gaps, 0.5),
    ttftP99Ms: percentile(firsts, 0.99),
    decodeStepMs: percentile(decodeSteps.map((s) => s.ms), 0.5),
    decodeRows: percentile(decodeSteps.map((s) => s.rows), 0.5),
    tail,
  };
}
