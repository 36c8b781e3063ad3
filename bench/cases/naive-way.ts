import { composeMix } from "#core/compose/index";
import { modelCase } from "../lib/case.js";
import { adapterPool, createEngine, distinctMixes, request } from "../lib/engine-workload.js";
import { interleave } from "../lib/interleave.js";
import { loraPrefillRoofline, loraRoofline } from "../lib/lora-roofline.js";
import { figure } from "../lib/report.js";
import { pairedRatio, scaleStats, summarize } from "../lib/stats.js";
import { prefillCaches, promptTokens, unmergedTargets } from "../lib/workload.js";
import { recordTimeline, type TimelineEvent } from "../lib/step-timeline.js";

/** One loraedge round's time by kind (step-timeline.ts events): compositions, steps (with their LoRA packing), the rest. */
interface RoundBreakdown {
  totalMs: number;
  composeMs: number;
  composes: number;
  packMs: number;
  /** Prefill steps (mixed steps, prompt chunks beside decode rows, count here too). */
  prefill: { steps: number; ms: number; rows: number };
  decode: { steps: number; ms: number; rows: number };
  /** Wall time covered by no composition and no step (their union taken out: a composition can run inside a step's span). */
  restMs: number;
}

/** Total length of the union of [start, end) intervals. */
function unionMs(intervals: Array<{ start: number; end: number }>): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let covered = 0;
  let end = -Infinity;
  for (const { start, end: e } of sorted) {
    if (e <= end) continue;
    covered += e - Math.max(start, end);
    end = e;
  }
  return covered;
}

export function roundBreakdown(events: readonly TimelineEvent[], totalMs: number): RoundBreakdown {
  const b: RoundBreakdown = { totalMs, composeMs: 0, composes: 0, packMs: 0, prefill: { steps: 0, ms: 0, rows: 0 }, decode: { steps: 0, ms: 0, rows: 0 }, restMs: 0 };
  b.restMs = Math.max(0, totalMs - unionMs(events.filter((e) => e.kind !== "gc")));
  for (const e of events) {
    if (e.kind === "compose") {
      b.composeMs += e.end - e.start;
      b.composes++;
    } else if (e.kind !== "gc") {
      const kind = e.kind === "decode" ? b.decode : b.prefill;
      kind.steps++;
      kind.ms += e.end - e.start;
      kind.rows += e.rows ?? 0;
      b.packMs += e.packMs ?? 0;
    }
  }
  return b;
}

/**
 * Case 4: 64 requests, each with its own mix.
 *  (a) loraedge: all 64 submitted at once to the engine (continuous batching, exact unmerged mixes);
 *  (b) the naive way a PEFT user writes: per request, merge the mix into the weights and build a
 *      session (here with our own fast ORT merge + externalData, so the baseline is optimistic),
 *      generate greedily at batch 1, dispose;
 *  (c) the floor: what any batched unmerged server must at least do for the same requests, on bare
 *      graphs: write each composed mix's bytes once (a memcpy of them), one prefill of the 64
 *      prompts on the LoRA-free graph plus a bare graph of only their per-row x·Aᵗ·Bᵗ (unpadded,
 *      resident: lora-roofline.ts), then the remaining decode steps at B = 64 likewise.
 * (b) is strictly sequential per request, so each round times `naiveSample` of them and scales to
 * 64 (its cost is linear by construction); (a) and (c) serve all 64 every round. naive ÷ floor is
 * the ceiling of naive ÷ loraedge on this machine; loraedge ÷ floor says how far from it loraedge is,
 * and (a)'s breakdown (compose, packing, prefill and decode steps, the rest) says where.
 */
export const naiveWay = modelCase({
  id: "4",
  title: "against the naive way (merge + session per request)",
  async run(ctx, model) {
    const requests = ctx.quick ? 16 : 64;
    const naiveSample = ctx.quick ? 2 : 4;
    const maxTokens = 8;
    const pool = adapterPool(model, 16, 404);
    const mixes = distinctMixes(pool, requests, 405);
    const prompt = promptTokens(model.manifest, 32, 4);
    const engine = createEngine(model, pool, 64);
    const timeline = recordTimeline(engine, model);
    const byId = new Map(pool.entries.map((e) => [e.id, e.adapter]));
    const composed = mixes.map((entries) => composeMix(entries!.map((e) => ({ adapter: byId.get(e.id)!, weight: e.weight }))));
    const targets = unmergedTargets(model.manifest);
    ctx.progress(`floor: bare per-row LoRA graphs for ${requests} mixes (prefill ${prompt.length} tokens, decode)`);
    const roofPrefill = await loraPrefillRoofline(targets, composed, prompt.length);
    const roofDecode = await loraRoofline(targets, composed);
    const composedFloats = composed.map((mix) => [...mix.modules.values()].reduce((n, m) => n + m.at.length + m.bt.length, 0));
    const sink = new Float32Array(Math.max(...composed.flatMap((mix) => [...mix.modules.values()].flatMap((m) => [m.at.length, m.bt.length]))));
    const floorParts: Array<{ compose: number; prefill: number; decode: number }> = [];
    const breakdowns: RoundBreakdown[] = [];
    let naiveRound = 0;
    ctx.progress(`${requests} requests × ${maxTokens} tokens; naive measured on ${naiveSample} requests per round`);
    try {
      const result = await interleave(
        {
          loraedge: async () => {
            timeline.events.length = 0;
            const t0 = performance.now();
            await Promise.all(
              mixes.map((adapters) => engine.generate(request(model.manifest.id, { prompt, max_tokens: maxTokens, adapters }))),
            );
            const totalMs = performance.now() - t0;
            breakdowns.push(roundBreakdown(timeline.events, totalMs));
            return totalMs;
          },
          naive: async () => {
            const t0 = performance.now();
            for (let i = 0; i < naiveSample; i++) {
              const adapters = mixes[(naiveRound * naiveSample + i) % mixes.length]!;
              const terms = await Promise.all(
                adapters.map(async (e) => ({ adapter: (await pool.provider.acquire(e.id, e.sha256)).adapter, weight: e.weight })),
              );
              const merged = await model.createMerged(composeMix(terms));
              let [out] = await merged.step([{ tokens: prompt, cache: null, mix: null }]);
              for (let t = 1; t < maxTokens; t++) {
                let best = 0;
                for (let v = 1; v < out.logits.length; v++) if (out.logits[v] > out.logits[best]) best = v;
                [out] = await merged.step([{ tokens: [best], cache: out.cache, mix: null }]);
              }
              await merged.dispose();
            }
            naiveRound++;
            return ((performance.now() - t0) / naiveSample) * requests;
          },
          floor: async () => {
            const t0 = performance.now();
            for (const mix of composed) for (const m of mix.modules.values()) sink.set(m.at), sink.set(m.bt);
            const t1 = performance.now();
            let caches = await prefillCaches(model, composed.map(() => prompt), composed.map(() => null));
            await roofPrefill.session.run(roofPrefill.feeds, roofPrefill.outputs);
            const t2 = performance.now();
            for (let t = 1; t < maxTokens; t++) {
              caches = (await model.step(caches.map((cache) => ({ tokens: [65], cache, mix: null })))).map((r) => r.cache);
              await roofDecode.session.run(roofDecode.feeds, roofDecode.outputs);
            }
            const t3 = performance.now();
            floorParts.push({ compose: t1 - t0, prefill: t2 - t1, decode: t3 - t2 });
            return t3 - t0;
          },
        },
        { warmup: 1, rounds: Math.max(5, ctx.quick ? 3 : 5) },
      );
      await engine.scheduler.drain(1000);
      const measured = breakdowns.slice(-result.loraedge.samples.length);
      const parts = floorParts.slice(-result.floor.samples.length);
      const median = (f: (b: RoundBreakdown) => number) => summarize(measured.map(f)).median;
      const ratio = pairedRatio(result.naive.samples, result.loraedge.samples);
      const ceiling = pairedRatio(result.naive.samples, result.floor.samples);
      const gap = pairedRatio(result.loraedge.samples, result.floor.samples);
      const mb = (composedFloats.reduce((a, b) => a + b, 0) * 4) / 1e6;
      return {
        figures: [
          figure(`naive ÷ loraedge total time (${requests} requests)`, ratio.median, "×", {
            stats: ratio,
            goal: { op: ">=", target: 10 },
            note:
              `ceiling on this machine (naive ÷ floor, same rounds): ${ceiling.median.toFixed(2)}×; loraedge is ${gap.median.toFixed(2)}× the floor: ` +
              `${median((b) => b.prefill.steps)} prefill steps of ${median((b) => b.prefill.rows / Math.max(1, b.prefill.steps)).toFixed(1)} rows and ` +
              `${median((b) => b.decode.steps)} decode steps of ${median((b) => b.decode.rows / Math.max(1, b.decode.steps)).toFixed(1)} rows where the floor has 1 and ${maxTokens - 1} of ${requests} ` +
              `(the 64 arrive as one burst: the scheduler admits them together and prefills them at its full prefill budget, prefillTokens ${engine.scheduler.limits.prefillTokens ?? 4 * engine.scheduler.limits.prefillChunk}), ` +
              `packing ${(median((b) => b.packMs) / 1000).toFixed(1)} s, composing ${(median((b) => b.composeMs) / 1000).toFixed(1)} s (into the buffers of the previous round's mixes)`,
          }),
          figure("ceiling: naive ÷ floor", ceiling.median, "×", { stats: ceiling, note: "the floor: composed bytes written once, then the prefill and decode steps on bare graphs (LoRA-free model + unpadded per-row x·Aᵗ·Bᵗ)" }),
          figure("loraedge ÷ floor", gap.median, "×", { stats: gap }),
          figure("loraedge total", result.loraedge.stats.median / 1000, "s", { stats: scaleStats(result.loraedge.stats, 1 / 1000) }),
          figure("naive total (scaled from sample)", result.naive.stats.median / 1000, "s", { stats: scaleStats(result.naive.stats, 1 / 1000) }),
          figure("floor total", result.floor.stats.median / 1000, "s", { stats: scaleStats(result.floor.stats, 1 / 1000) }),
          figure("floor: composed bytes written once (memcpy)", summarize(parts.map((p) => p.compose)).median, "ms", { note: `${mb.toFixed(0)} MB of composed Aᵗ/Bᵗ` }),
          figure(`floor: prefill ${requests} × ${prompt.length} tokens (base + bare LoRA)`, summarize(parts.map((p) => p.prefill)).median, "ms"),
          figure(`floor: ${maxTokens - 1} decode steps at B = ${requests} (base + bare LoRA)`, summarize(parts.map((p) => p.decode)).median, "ms"),
          figure("loraedge: composing the mixes", median((b) => b.composeMs), "ms", { note: `${Math.round(median((b) => b.composes))} compositions per round (the pool keeps a mix only while a request uses it; its arrays then go to the next compositions, cache/float-buffer-pool.ts)` }),
          figure("loraedge: LoRA packing (inside the steps)", median((b) => b.packMs), "ms"),
          figure("loraedge: prefill steps", median((b) => b.prefill.ms), "ms", {
            note: `${median((b) => b.prefill.steps)} steps, ${median((b) => b.prefill.rows / Math.max(1, b.prefill.steps)).toFixed(1)} rows each`,
          }),
          figure("loraedge: decode steps", median((b) => b.decode.ms), "ms", {
            note: `${median((b) => b.decode.steps)} steps, ${median((b) => b.decode.rows / Math.max(1, b.decode.steps)).toFixed(1)} rows each`,
          }),
          figure("loraedge: the rest (event loop, scheduling, sampling)", median((b) => b.restMs), "ms", { note: "wall time outside every composition and step (their union)" }),
        ],
      };
    } finally {
      timeline.stop();
      await roofPrefill.session.release();
      await roofDecode.session.release();
    }
  },
});
