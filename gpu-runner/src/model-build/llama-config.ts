/** Sizes of a Llama-family decoder (Hugging Face LlamaConfig field meanings). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  contextLength: number;
  ropeTheta: number;
  rmsNormEps: number;
  /** lm_head shares the embedding matrix. */
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2); absent = none. */
  qkvBias?: boolean;
}

/** The targetable linear layers of one decoder layer, HF names, with their (in, out). */
export function llamaLayerTargets(config: LlamaConfig, layer: number): { module: string; in: number; out: number }[] {
  const d = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const ff = config.intermediateSize;
  const p = `model.layers.${layer}`;
  return [
    { module: `${p}.self_attn.q_proj`, in: d, out: q },
    { module: `${p}.self_attn.k_proj`, in: d, out: kv },
    { module: `${p}.self_attn.v_proj`, in: d, out: kv },
    { module: `${p}.self_attn.o_proj`, in: q, out: d },
    { module: `${p}.mlp.gate_proj`, in: d, out: ff },
    { module: `${p}.mlp.up_proj`, in: d, out: ff },
    { module: `${p}.mlp.down_proj`, in: ff, out: d },
  ];
}

export function llamaTargets(config: LlamaConfig): { module: string; in: number; out: number }[] {
  const all: { module: string; in: number; out: number }[] = [];
  for (let i = 0; i < config.numLayers; i++) all.push(...llamaLayerTargets(config, i));
  return all;
}

/** HF tensor names and shapes of a Llama checkpoint (weights [out, in], as nn.Linear stores them). */
export function llamaTensorShapes(config: LlamaConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const d = config.hiddenSize;
  shapes.set("model.embed_tokens.weight", [config.vocabSize, d]);
  for (let i = 0; i < config.numLayers; i++) {
    shapes.set(`model.layers.${i}.input_layernorm.weight`, [d]);
    shapes.set(`model.layers.${i}.post_attention_layernorm.weight`, [d]);
    for (const t of llamaLayerTargets(config, i)) {
      shapes.set(`${t.module}.weight`, [t.out, t.in]);
      if (config.qkvBias && /\.self_attn\.[qkv]_proj$/.test(t.module)) shapes.set(`${t.module}.bias`, [t.out]);
    }
  }
  shapes.set("model.norm.weight", [d]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [config.vocabSize, d]);
  return shapes;
}

export function llamaParameterCount(config: LlamaConfig): number {
  let n = 0;
  for (const shape of llamaTensorShapes(config).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/** Checks the sizes make a valid decoder; throws with the reason otherwise. */
export function validateLlamaConfig(config: LlamaConfig): void {
  const positive: (keyof LlamaConfig)[] = ["vocabSize", "hiddenSize", "numLayers", "numHeads", "numKvHeads", "headDim", "intermediateSize", "contextLength"];
  for (const key of positive) {
    const v = config[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`llama config: ${key} must be a positive integer, got ${String(v)}`);
  }
  if (config.numHeads % config.numKvHeads !== 0) throw new Error(`llama config: numHeads ${config.numHeads} is not a multiple of numKvHeads ${config.numKvHeads}`);
  if (config.headDim % 2 !== 0) throw new Error(`llama config: headDim ${config.headDim} must be even (rotary embedding)`);
  if (!(config.ropeTheta > 0) || !(config.rmsNormEps > 0)) throw new Error("llama config: ropeTheta and rmsNormEps must be positive");
}
