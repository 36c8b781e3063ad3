import type { BenchCase } from "../lib/case.js";
import { interleave } from "../lib/interleave.js";
import { figure, type Figure } from "../lib/report.js";
import { pairedRatio } from "../lib/stats.js";
import { benchSessionOptions, decodeTokensPerSecond, loadBenchModel, prefillCaches, promptTokens } from "../lib/workload.js";
import { MODEL_PRESETS, isPresetId } from "../../gpu-runner/src/model-build/index.js";
import { buildLlamaGraph } from "../../gpu-runner/src/model-build/llama-graph.js";
import { seededLlamaCheckpoint } from "../../gpu-runner/src/model-build/seeded-checkpoint.js";
import { loadBackend } from "../../gpu-runner/src/backend/index.js";
import { createOnnxModel } from "../../gpu-runner/src/model/onnx-model.js";
import type { BaseModel } from "../../gpu-runner/src/model/index.js";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel } from "../../gpu-runner/src/model/index.js";

/**
 * Case 10 "LoRA tax": base-only decode (no row has a mix) on the serving model ÷ a LoRA-free graph
 * of the same weights built independently (the builder with lora: false), interleaved. Beside it,
 * the serving graph with its LoRA inputs fed at R = 0 (what base batches paid before the LoRA-free twin), and an
 * A/A figure: a second session of the control graph ÷ the control, i.e. how far two sessions of one graph differ here.
 */
export const loraTax: BenchCase = {
  id: "10",
  title: "LoRA tax on base batches",
  async run(ctx) {
    if (!isPresetId(ctx.modelId)) throw new Error(`case 10 needs a preset model, got ${ctx.modelId}`);
    const preset = MODEL_PRESETS[ctx.modelId];
    const serving = await loadBenchModel(ctx.modelId);
    // The full LoRA graph for every step: no LoRA-free twin, no pruned variants (lora-variants.ts).
    const loraGraph = await loadModel(await ensureModel(ctx.modelId), { backend: "node", ...benchSessionOptions(), plainSession: false, loraVariants: "off" });
    ctx.progress("building the LoRA-free control graph (twice: control and control′) from the same checkpoint");
    const built = buildLlamaGraph(seededLlamaCheckpoint(preset.config, preset.seed), { lora: false });
    const loraFree = async (): Promise<BaseModel> =>
      createOnnxModel({
        backend: await loadBackend("node"),
        manifest: { ...serving.manifest, targets: serving.manifest.targets.map((t) => ({ ...t, mode: "merge-only" as const })) },
        spec: built.spec,
        graph: built.graph,
        weights: built.weights,
        tokenizer: serving.tokenizer,
        sessionOptions: benchSessionOptions(),
        plainSession: false,
      });
    const control = await loraFree();
    // The same LoRA-free session opened a second time: its ratio to control (A/A) is what two sessions of one graph
    // differ by here (placement of ONNX Runtime's weight copy and arena), the noise floor of the tax figure.
    const controlPrime = await loraFree();
    const figures: Figure[] = [];
    try {
      for (const B of ctx.quick ? [1] : [1, 8]) {
        const prompts = Array.from({ length: B }, (_, i) => promptTokens(serving.manifest, 16, i + 1));
        const none = prompts.map(() => null);
        const steps = ctx.quick ? 4 : 16;
        const caches = {
          serving: await prefillCaches(serving, prompts, none),
          loraGraph: await prefillCaches(loraGraph, prompts, none),
          control: await prefillCaches(control, prompts, none),
          controlPrime: await prefillCaches(controlPrime, prompts, none),
        };
        ctx.progress(`batch ${B}: ${steps} base decode steps, serving vs LoRA graph at R = 0 vs LoRA-free control`);
        const r = await interleave(
          {
            serving: () => decodeTokensPerSecond(serving, caches.serving, none, steps),
            loraGraph: () => decodeTokensPerSecond(loraGraph, caches.loraGraph, none, steps),
            control: () => decodeTokensPerSecond(control, caches.control, none, steps),
            controlPrime: () => decodeTokensPerSecond(controlPrime, caches.controlPrime, none, steps),
          },
          ctx,
        );
        const tax = pairedRatio(r.serving.samples, r.control.samples);
        const before = pairedRatio(r.loraGraph.samples, r.control.samples);
        const aa = pairedRatio(r.controlPrime.samples, r.control.samples);
        figures.push(
          figure(`batch ${B} base decode serving ÷ LoRA-free graph tok/s`, tax.median, "×", { stats: tax, goal: { op: ">=", target: 0.97 }, note: "base steps run the LoRA-free twin session (strip-lora.ts)" }),
          figure(`batch ${B} LoRA-free control′ ÷ control tok/s (A/A: the same graph in two sessions)`, aa.median, "×", { stats: aa, note: "how far two sessions of one graph differ in this run (session placement), beside the tax" }),
          figure(`batch ${B} LoRA graph at R = 0 ÷ LoRA-free graph tok/s`, before.median, "×", { stats: before, note: "what base batches paid with the LoRA inputs fed empty" }),
          figure(`batch ${B} serving base decode`, r.serving.stats.median, "tok/s", { stats: r.serving.stats }),
          figure(`batch ${B} LoRA-free control`, r.control.stats.median, "tok/s", { stats: r.control.stats }),
        );
      }
      return { figures };
    } finally {
      await controlPrime.dispose();
      await control.dispose();
      await loraGraph.dispose();
      await serving.dispose();
    }
  },
};
