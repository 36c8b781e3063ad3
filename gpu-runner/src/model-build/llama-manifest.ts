import type { ModelManifest } from "#core/manifest/model-manifest";
import { llamaParameterCount, llamaTargets, type LlamaConfig } from "./llama-config.js";

/** The manifest of a Llama-family model built by buildLlamaGraph (every projection "unmerged"). */
export function llamaManifest(args: {
  id: string;
  config: LlamaConfig;
  tokenizer: ModelManifest["tokenizer"];
  maxRank: number;
  source: Record<string, unknown>;
  /** Stored weight dtype (default float32). */
  dtype?: ModelManifest["dtype"];
}): ModelManifest {
  const c = args.config;
  return {
    id: args.id,
    architecture: "llama",
    dtype: args.dtype ?? "float32",
    vocabSize: c.vocabSize,
    contextLength: c.contextLength,
    hiddenSize: c.hiddenSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    intermediateSize: c.intermediateSize,
    parameters: llamaParameterCount(c),
    tokenizer: args.tokenizer,
    maxRank: args.maxRank,
    targets: llamaTargets(c).map((t) => ({ module: t.module, in: t.in, out: t.out, mode: "unmerged" as const, fanInFanOut: false })),
    source: args.source,
  };
}
