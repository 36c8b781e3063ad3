import type { ComposedMix } from "#core/lora/types";
import { loadBackend, type HostTensor, type Session } from "../../gpu-runner/src/backend/index.js";
import { readModelDir } from "../../gpu-runner/src/model/index.js";
import { variantStrippedInputs } from "../../gpu-runner/src/model/lora-variants.js";
import { loraInputNames } from "../../gpu-runner/src/model/onnx-model.js";
import { packLora, packPast, packTokens, padsZeroWidth, type PackedRow } from "../../gpu-runner/src/model/step-batch.js";
import { stripLoraInputs } from "../../gpu-runner/src/model/strip-lora.js";
import { benchSessionOptions } from "./workload.js";

/** The graphs a serving model can run a step on: LoRA-free twin, the two pruned variants, the full LoRA graph. */
export type GraphKind = "lora-free" | "shared-only" | "per-row-only" | "full";

/**
 * One prefill of `prompt` at R = 0 (a mix with no modules: every LoRA input fed empty) on each
 * kind of graph, as bare ONNX Runtime sessions of the same weights: what the LoRA glue of each
 * graph costs by itself. Returns a timed run per kind (ms) and a release.
 * On an execution provider that refuses zero-width inputs (`padsZeroWidth`: every EP but the CPU;
 * the WebGPU EP crashed the process on them) each LoRA path gets the one zero column the runner
 * feeds there, so the figure is the glue as served on that EP.
 */
export async function openGlueTax(modelDir: string, prompt: readonly number[]): Promise<{ run: Record<GraphKind, () => Promise<number>>; release(): Promise<void> }> {
  const { manifest, spec, graph, weights } = await readModelDir(modelDir);
  const backend = await loadBackend("node");
  const stripped = variantStrippedInputs(spec);
  const graphs: Record<GraphKind, Uint8Array | null> = {
    "lora-free": stripLoraInputs(graph, loraInputNames(spec)),
    "shared-only": stripLoraInputs(graph, stripped["shared-only"]),
    "per-row-only": stripLoraInputs(graph, stripped["per-row-only"]),
    full: graph,
  };
  const empty: ComposedMix = { modules: new Map(), maxRank: 0 };
  const rows: PackedRow[] = [{ tokens: prompt, cache: null, mix: empty }];
  const dims = new Map(manifest.targets.map((t) => [t.module, { in: t.in, out: t.out }] as const));
  const { feeds: tokenFeeds, shape } = packTokens(spec, rows, false);
  const all: Record<string, HostTensor> = { ...tokenFeeds, ...packPast(spec, rows, shape), ...packLora(spec, rows, dims, [true], undefined, { minWidth: padsZeroWidth(benchSessionOptions().executionProvider) ? 1 : 0 }) };
  const sessions: Session[] = [];
  const run = {} as Record<GraphKind, () => Promise<number>>;
  try {
    for (const kind of Object.keys(graphs) as GraphKind[]) {
      const g = graphs[kind];
      if (!g) throw new Error(`the ${kind} graph cannot be stripped`);
      const session = await backend.createSession(g, { ...benchSessionOptions(), externalData: [{ path: spec.weightsFile, data: weights }] });
      sessions.push(session);
      const feeds = Object.fromEntries(session.inputNames.map((n) => [n, all[n]]));
      run[kind] = async () => {
        const t0 = performance.now();
        await session.run(feeds, [spec.logits]);
        return performance.now() - t0;
      };
    }
  } catch (e) {
    for (const s of sessions) await s.release();
    throw e;
  }
  return { run, release: async () => { for (const s of sessions) await s.release(); } };
}
