import type { BenchCase } from "../lib/case.js";
import { interleave, roundOrder } from "../lib/interleave.js";
import { figure, type Figure } from "../lib/report.js";
import { medianAcross, pairedRatio, spreadAcross, summarize } from "../lib/stats.js";
import { benchSessionOptions, decodeTokensPerSecond, loadBenchModel, prefillCaches, promptTokens } from "../lib/workload.js";
import { MODEL_PRESETS, isPresetId } from "../../gpu-runner/src/model-build/index.js";
import { buildLlamaGraph } from "../../gpu-runner/src/model-build/llama-graph.js";
import { seededLlamaCheckpoint } from "../../gpu-runner/src/model-build/seeded-checkpoint.js";
import { loadBackend } from "../../gpu-runner/src/backend/index.js";
import { createOnnxModel } from "../../gpu-runner/src/model/onnx-model.js";
import type { BaseModel, KvCache } from "../../gpu-runner/src/model/index.js";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel } from "../../gpu-runner/src/model/index.js";

/** The kinds of model the tax compares, each a set of models built the same way. */
const KINDS = ["serving", "control", "controlPrime"] as const;
type Kind = (typeof KINDS)[number];

/**
 * Case 10 "LoRA tax": base-only decode (no row has a mix) on the serving model ÷ a LoRA-free graph
 * of the same weights built independently (the builder with lora: false), interleaved. The serving
 * model's base steps run its LoRA-free twin session (strip-lora.ts: the same nodes, initializers and
 * weights file as the control, only value names differ), so the tax itself is ≈ 0 and what a single
 * pair of sessions reads is mostly where ONNX Runtime placed each session's weight copy and arena:
 * two sessions of one graph differ here by up to 15 % for as long as they live. As in case 1, each kind
 * is therefore a SET of models (3 in a full run: serving models loaded as the runner loads them,
 * LoRA-free controls, and a second control set control′ built the same way), a round's figure for a
 * kind is the median over its set, and the A/A ratio control′ ÷ control (the same statistic on
 * identical sets) stands beside the goal's figure as its noise floor; beside them the same two ratios
 * from one model of each kind (what a single pair reads) and the spread across the control set.
 * Also beside it, without a set: the serving graph with its LoRA inputs fed at R = 0 (one model, what
 * base batches paid before the LoRA-free twin) ÷ the control set. Every model is its own variant in
 * the rounds, kinds alternating, so all see the same stretch of machine time.
 */
export const loraTax: BenchCase = {
  id: "10",
  title: "LoRA tax on base batches",
  async run(ctx) {
    if (!isPresetId(ctx.modelId)) throw new Error(`case 10 needs a preset model, got ${ctx.modelId}`);
    const preset = MODEL_PRESETS[ctx.modelId];
    const perKind = ctx.quick ? 1 : 3;
    const sets = {} as Record<Kind, BaseModel[]>;
    for (const kind of KINDS) sets[kind] = [];
    let loraGraph: BaseModel | undefined;
    const figures: Figure[] = [];
    try {
      ctx.progress(`building ${perKind} serving model(s) and 2 × ${perKind} LoRA-free controls (one checkpoint, the builder with lora: false)`);
      const built = buildLlamaGraph(seededLlamaCheckpoint(preset.config, preset.seed), { lora: false });
      const loraFree = async (manifest: BaseModel["manifest"], tokenizer: BaseModel["tokenizer"]): Promise<BaseModel> =>
        createOnnxModel({
          backend: await loadBackend("node"),
          manifest: { ...manifest, targets: manifest.targets.map((t) => ({ ...t, mode: "merge-only" as const })) },
          spec: built.spec,
          graph: built.graph,
          weights: built.weights, // one buffer for every control: ONNX Runtime copies it into each session
          tokenizer,
          sessionOptions: benchSessionOptions(),
          plainSession: false,
        });
      // Built in interleave's round order of the kinds, as case 1 (group 0: serving, control, control′; group 1 the
      // reverse; then rotated): no kind always built first or right after the same kind (case 1 found that order matters).
      // Group 0 builds a serving model first: the controls take its manifest and tokenizer. Any serving model's would do:
      // each is read from the same model directory (ensureModel), and a control's graph and weights are `built`'s.
      for (let k = 0; k < perKind; k++) {
        for (const kind of roundOrder(KINDS, k)) {
          const serving = sets.serving[0];
          sets[kind].push(kind === "serving" ? await loadBenchModel(ctx.modelId) : await loraFree(serving!.manifest, serving!.tokenizer));
        }
      }
      // The full LoRA graph for every step: no LoRA-free twin, no pruned variants (lora-variants.ts).
      loraGraph = await loadModel(await ensureModel(ctx.modelId), { backend: "node", ...benchSessionOptions(), plainSession: false, loraVariants: "off" });
      // Read after each batch's rounds, not here: ONNX Runtime's arenas grow as the sessions first run (prefill, the
      // warm-up rounds), so here the process holds the weights but not what its sessions need to run (the largest reading is kept).
      let rssGiB = 0;
      const manifest = sets.serving[0]!.manifest;
      for (const B of ctx.quick ? [1] : [1, 8]) {
        const prompts = Array.from({ length: B }, (_, i) => promptTokens(manifest, 16, i + 1));
        const none = prompts.map(() => null);
        const steps = ctx.quick ? 4 : 16;
        // Variants in rounds: the sets with kinds alternating (serving₀, control₀, control′₀, serving₁, …), then the LoRA graph.
        const models: Array<{ key: string; model: BaseModel; caches: KvCache[] }> = [];
        for (let k = 0; k < perKind; k++) for (const kind of KINDS) models.push({ key: `${kind}${k}`, model: sets[kind][k]!, caches: [] });
        models.push({ key: "loraGraph", model: loraGraph, caches: [] });
        for (const m of models) m.caches = await prefillCaches(m.model, prompts, none);
        ctx.progress(`batch ${B}: ${steps} base decode steps on ${models.length} models (serving, control, control′ sets; LoRA graph at R = 0), interleaved`);
        const r = await interleave(Object.fromEntries(models.map((m) => [m.key, () => decodeTokensPerSecond(m.model, m.caches, none, steps)])), ctx);
        rssGiB = Math.max(rssGiB, process.memoryUsage().rss / 2 ** 30); // every model open, its arenas filled, this batch's KV caches held
        // Per round, a kind's tokens/s: the median over its set.
        const tps = (kind: Kind) => medianAcross(sets[kind].map((_, k) => r[`${kind}${k}`]!.samples));
        const tax = pairedRatio(tps("serving"), tps("control"));
        const aa = pairedRatio(tps("controlPrime"), tps("control"));
        const taxOnePair = pairedRatio(r.serving0!.samples, r.control0!.samples);
        const aaOnePair = pairedRatio(r.controlPrime0!.samples, r.control0!.samples);
        const before = pairedRatio(r.loraGraph!.samples, tps("control"));
        const set = `median of ${perKind} model${perKind > 1 ? "s" : ""} per kind per round`;
        const serving = summarize(tps("serving"));
        const control = summarize(tps("control"));
        const spread = spreadAcross(sets.control.map((_, k) => r[`control${k}`]!.samples));
        figures.push(
          figure(`batch ${B} base decode serving ÷ LoRA-free graph tok/s`, tax.median, "×", { stats: tax, goal: { op: ">=", target: 0.97 }, note: `base steps run the LoRA-free twin session (strip-lora.ts); ${set}` }),
          figure(`batch ${B} LoRA-free control′ ÷ control tok/s (A/A)`, aa.median, "×", { stats: aa, note: `two sets of identical LoRA-free sessions, the same statistic: the noise floor of the ratio above` }),
          figure(`batch ${B} serving₀ ÷ control₀ tok/s (one pair)`, taxOnePair.median, "×", { stats: taxOnePair, note: "one model of each kind, what the case read before the sets" }),
          figure(`batch ${B} control′₀ ÷ control₀ tok/s (one pair, A/A)`, aaOnePair.median, "×", { stats: aaOnePair, note: "two single sessions of the same graph and weights" }),
          ...(perKind > 1
            ? [figure(`batch ${B} decode tok/s spread across the control set`, spread.median, "×", { stats: spread, note: "per round, fastest ÷ slowest control session (identical sessions)" })]
            : []),
          figure(`batch ${B} LoRA graph at R = 0 ÷ LoRA-free graph tok/s`, before.median, "×", { stats: before, note: "what base batches paid with the LoRA inputs fed empty (one LoRA-graph session ÷ the control set)" }),
          figure(`batch ${B} serving base decode`, serving.median, "tok/s", { stats: serving, note: set }),
          figure(`batch ${B} LoRA-free control`, control.median, "tok/s", { stats: control, note: set }),
        );
      }
      figures.push(
        figure("process resident memory after the decode rounds, every model open", rssGiB, "GiB", {
          note: `${perKind} serving models (LoRA + LoRA-free sessions), ${2 * perKind} controls, one LoRA graph: each session holds its own copy of the weights and its arenas; read after each batch's rounds (the largest)`,
        }),
      );
      return { figures };
    } finally {
      await loraGraph?.dispose();
      for (const kind of KINDS) for (const m of sets[kind]) await m.dispose();
    }
  },
};
