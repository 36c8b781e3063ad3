/**
 * How to read third-party decoder ONNX exports, as data: which weights are LoRA targets (and
 * their PEFT module names), how the graph's inputs/outputs are driven, and where the sizes come
 * from. Adding an export family (ORT GenAI's Llama builder, Optimum) means adding an entry here,
 * not new code, as long as its attention inputs fit the GraphSpec vocabulary (separate or
 * stacked KV, key mask or additive bias, int32/int64 ids).
 */
import type { GraphSpec } from "../model/graph-spec.js";

/** Maps a weight to a PEFT module: `match` on the initializer name (or the consuming node's name), `module` may use $1… groups. */
export interface WeightRule {
  on: "initializer" | "node";
  match: string;
  module: string;
}

export interface ExportFamily {
  architecture: string;
  /** Base weights stored [in, out] (PEFT fan_in_fan_out), e.g. GPT-2 Conv1D. */
  fanInFanOut: boolean;
  /** File names in the source directory. */
  graphFile: string;
  /** Weight → module rules, first match wins; unmatched weights (lm_head, embeddings) are not targets. */
  weights: WeightRule[];
  /** Fused ops whose weight input is a merge-only target: op type → input index of the weight. */
  fusedWeightInputs: Record<string, number>;
  /** Graph I/O in GraphSpec terms (without files and targets). */
  io: Omit<GraphSpec, "format" | "graphFile" | "weightsFile" | "targets" | "kv"> & { kv: GraphSpec["kv"] extends infer K ? (K extends { layers: number } ? Omit<K, "layers" | "heads" | "headDim"> : never) : never };
  /** The module whose output size is the MLP's intermediate size. */
  intermediateModule: string;
}

export const EXPORT_FAMILIES: Record<string, ExportFamily> = {
  /** ONNX Runtime GenAI's GPT-2 export (past_N stacked KV, com.microsoft Attention with packed qkv). */
  "genai-gpt2": {
    architecture: "gpt2",
    fanInFanOut: true,
    graphFile: "past.onnx",
    weights: [{ on: "initializer", match: "^(transformer\\.h\\.\\d+\\.(?:attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj))\\.weight$", module: "$1" }],
    fusedWeightInputs: { Attention: 1 },
    io: {
      inputIds: { name: "input_ids", type: "int32" },
      positionIds: { name: "position_ids", type: "int32" },
      mask: { kind: "keys", name: "attention_mask", type: "int32" },
      logitsPositions: null,
      logits: "logits",
      kv: { layout: "stacked", past: "past_{i}", present: "present_{i}" },
    },
    intermediateModule: "transformer.h.0.mlp.c_fc",
  },
};
