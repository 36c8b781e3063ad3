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
  /** genai_config.json `model.type` values this family reads (auto-detection). */
  genaiTypes: string[];
  /**
   * Replace the export's own mask computation by an additive bias input [batch, 1, seq, total]
   * that the runtime builds (io.mask kind "bias"): `opType` nodes take it at input `index`, and the
   * export's key-mask input `replaces` (with the nodes only it fed) goes away. Needed when the
   * export's mask subgraph only handles prompts without a past (GenAI's MultiHeadAttention exports
   * fail on a prefill chunk after a past: chunked prefill, rows of mixed lengths).
   */
  attentionBias?: { opType: string; index: number; replaces: string };
  /** Weights this family cannot serve adapters on (initializer-name regex → reason): the import is refused, never silently short of targets. */
  unsupportedWeights?: { match: string; reason: string }[];
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
    genaiTypes: ["gpt2"],
  },
  /**
   * ONNX Runtime GenAI's model builder, Llama family (llama, mistral, qwen2 … share the layout):
   * plain MatMul projections named model.layers.N.attn.{q,k,v,o}_proj.MatMul.weight and
   * model.layers.N.mlp.{gate,up,down}_proj.MatMul.weight ([in, out], fp32 or fp16), separate
   * past/present KV per layer, int64 ids and key mask, logits for every position.
   */
  "genai-llama": {
    architecture: "llama",
    fanInFanOut: false,
    graphFile: "model.onnx",
    weights: [
      { on: "initializer", match: "^model\\.layers\\.(\\d+)\\.attn\\.([qkvo])_proj\\.MatMul\\.weight$", module: "model.layers.$1.self_attn.$2_proj" },
      { on: "initializer", match: "^model\\.layers\\.(\\d+)\\.mlp\\.(gate|up|down)_proj\\.MatMul\\.weight$", module: "model.layers.$1.mlp.$2_proj" },
    ],
    fusedWeightInputs: {},
    io: {
      inputIds: { name: "input_ids", type: "int64" },
      positionIds: { name: "position_ids", type: "int64" },
      mask: { kind: "bias", name: "attention_bias" },
      logitsPositions: null,
      logits: "logits",
      kv: { layout: "separate", pastKey: "past_key_values.{i}.key", pastValue: "past_key_values.{i}.value", presentKey: "present.{i}.key", presentValue: "present.{i}.value" },
    },
    intermediateModule: "model.layers.0.mlp.gate_proj",
    genaiTypes: ["llama", "mistral", "qwen2"],
    attentionBias: { opType: "MultiHeadAttention", index: 5, replaces: "attention_mask" },
    unsupportedWeights: [{ match: "\\.attn\\.qkv_proj\\.", reason: "packed q/k/v projection (a PEFT q_proj/k_proj/v_proj would be a slice of it)" }],
  },
};

/** The family whose genaiTypes list a genai_config.json `model.type`. */
export function familyForGenaiType(type: string): string | null {
  for (const [name, family] of Object.entries(EXPORT_FAMILIES)) if (family.genaiTypes.includes(type)) return name;
  return null;
}
