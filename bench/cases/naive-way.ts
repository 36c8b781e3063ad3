import { composeMix } from "#core/compose/index";
import { modelCase } from "../lib/case.js";
import { adapterPool, createEngine, distinctMixes, request } from "../lib/engine-workload.js";
import { interleave } from "../lib/interleave.js";
import { figure } from "../lib/report.js";
import { scaleStats } from "../lib/stats.js";
import { promptTokens } from "../lib/workload.js";

/**
 * Case 4: 64 requests, each with its own mix.
 *  (a) loraedge: all 64 submitted at once to the engine (continuous batching, exact unmerged mixes);
 *  (b) the naive way a PEFT user writes: per request, merge the mix into the weights and build a
 *      session (here with our own fast ORT merge + externalData, so the baseline is optimistic),
 *      generate greedily at batch 1, dispose.
 * (b) is strictly sequential per request, so each round times `naiveSample` of them and scales to
 * 64 (its cost is linear by construction); (a) serves all 64 every round.
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
    let naiveRound = 0;
    ctx.progress(`${requests} requests × ${maxTokens} tokens; naive measured on ${naiveSample} requests per round`);
    const result = await interleave(
      {
        loraedge: async () => {
          const t0 = performance.now();
          await Promise.all(
            mixes.map((adapters) => engine.generate(request(model.manifest.id, { prompt, max_tokens: maxTokens, adapters }))),
          );
          return performance.now() - t0;
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
      },
      { warmup: 1, rounds: Math.max(5, ctx.quick ? 3 : 5) },
    );
    await engine.scheduler.drain(1000);
    const ratio = result.naive.stats.median / result.loraedge.stats.median;
    return {
      figures: [
        figure(`naive ÷ loraedge total time (${requests} requests)`, ratio, "×", {
          goal: { op: ">=", target: 10 },
          note: "every request has its own mix, so each batched step copies every row's own At/Bt into padded per-row inputs (≈1 GB per step at batch 16, ranks ≤ 96); the naive path's merged build is only ≈1.6 s on a 100M model",
        }),
        figure("loraedge total", result.loraedge.stats.median / 1000, "s", { stats: scaleStats(result.loraedge.stats, 1 / 1000) }),
        figure("naive total (scaled from sample)", result.naive.stats.median / 1000, "s", { stats: scaleStats(result.naive.stats, 1 / 1000) }),
      ],
    };
  },
});

