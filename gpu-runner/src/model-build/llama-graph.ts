/**
 * The Llama-family decoder as an ONNX graph (opset 17, standard ops only):
 * embedding → N × [RMSNorm → GQA attention with RoPE and KV cache → residual → RMSNorm →
 * SwiGLU MLP → residual] → RMSNorm → lm_head at the requested positions.
 * Every q/k/v/o/gate/up/down projection computes
 *   y = x·W + Where(Mk, x·Ac, 0)·Bc  then  y[rows[n]] += (x[rows[n]]·Aᵗ[n])·Bᵗ[n] for every chunk n
 * with the shared path Ac [in, Rc], Bc [Rc, out], Mk [batch, 1, Rc] and the per-row path in rank
 * chunks Aᵗ [N, in, K], Bᵗ [N, K, out], rows [N] (Gather, MatMul, ScatterND add; no Transpose:
 * correct at N = 0, K = 0 and Rc = 0 on both backends; see lora-paths.ts and step-batch.ts). The KV cache comes in
 * as past [batch, kvHeads, past, headDim] and only this step's entries go out (new.{i}.key/value).
 */
import { DataType, GraphBuilder, WeightBlob } from "../onnx/index.js";
import { lmHeadWeight, type LlamaCheckpoint } from "./checkpoint.js";
import type { GraphSpec, TargetBinding } from "../model/graph-spec.js";
import { llamaLayerTargets, validateLlamaConfig } from "./llama-config.js";

export const LLAMA_GRAPH_FILE = "model.onnx";
export const LLAMA_WEIGHTS_FILE = "weights.bin";
const F = DataType.FLOAT;

/** [rows, cols] → [cols, rows]. */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/**
 * Rotary tables [contextLength, headDim]: cos/sin(p · θ^(−2i/headDim)) for i < headDim/2,
 * repeated for the second half (HF rotate_half convention).
 */
export function ropeTables(contextLength: number, headDim: number, theta: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const cos = new Float32Array(contextLength * headDim);
  const sin = new Float32Array(contextLength * headDim);
  for (let p = 0; p < contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(theta, (-2 * i) / headDim);
      cos[p * headDim + i] = cos[p * headDim + i + half] = Math.cos(angle);
      sin[p * headDim + i] = sin[p * headDim + i + half] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export interface BuiltGraph {
  graph: Uint8Array;
  weights: Uint8Array;
  spec: GraphSpec;
}

export interface BuildLlamaOptions {
  /**
   * "float16": the projection, embedding and lm_head weights are stored fp16 and their MatMuls run
   * in fp16 (x Cast down, result Cast up); norms, attention, rotary tables and LoRA stay fp32.
   * Default "float32".
   */
  weightDtype?: "float32" | "float16";
  /** false: the plain graph, no LoRA inputs (the bench's LoRA-tax control). Default true. */
  lora?: boolean;
}

export function buildLlamaGraph(checkpoint: LlamaCheckpoint, opts: BuildLlamaOptions = {}): BuiltGraph {
  const fp16 = opts.weightDtype === "float16";
  const config = checkpoint.config;
  validateLlamaConfig(config);
  const g = new GraphBuilder();
  const blob = new WeightBlob(LLAMA_WEIGHTS_FILE);
  const tensor = (name: string) => {
    const t = checkpoint.tensors.get(name);
    if (!t) throw new Error(`checkpoint is missing tensor ${name}`);
    return t;
  };
  const weight = (name: string) => g.initializer(blob.add(name, tensor(name).shape, tensor(name).data));

  const H = config.numHeads;
  const KVH = config.numKvHeads;
  const hd = config.headDim;
  const groups = H / KVH; // query heads per KV head

  const inputIds = g.input("input_ids", DataType.INT64, ["batch", "seq"]);
  const positionIds = g.input("position_ids", DataType.INT64, ["batch", "seq"]);
  const bias = g.input("attention_bias", F, ["batch", 1, "seq", "total"]);
  const logitsPositions = g.input("logits_positions", DataType.INT64, ["batch", "n_logits"]);

  const rope = ropeTables(config.contextLength, hd, config.ropeTheta);
  const cosTable = g.initializer(blob.add("rope.cos", [config.contextLength, hd], rope.cos));
  const sinTable = g.initializer(blob.add("rope.sin", [config.contextLength, hd], rope.sin));
  const axis1 = g.int64s([1]);
  const cos = g.node("Unsqueeze", [g.node("Gather", [cosTable, positionIds]), axis1]); // [b, 1, s, hd]
  const sin = g.node("Unsqueeze", [g.node("Gather", [sinTable, positionIds]), axis1]); // [b, 1, s, hd]

  const rmsNorm = (x: string, w: string): string => {
    const ms = g.node("ReduceMean", [g.node("Mul", [x, x])], { axes: [-1], keepdims: 1 }); // [b, s, 1]
    const rms = g.node("Sqrt", [g.node("Add", [ms, g.scalar(config.rmsNormEps)])]);
    return g.node("Mul", [g.node("Div", [x, rms]), w]);
  };

  const targets: TargetBinding[] = [];
  const zero = opts.lora === false ? "" : g.scalar(0);
  const linear = (x: string, module: string, inF: number, outF: number): string => {
    const src = tensor(`${module}.weight`); // [out, in]
    const wData = transpose2d(src.data, outF, inF); // [in, out]
    const w = g.initializer(fp16 ? blob.addFloat16(`${module}.weight`, [inF, outF], wData) : blob.add(`${module}.weight`, [inF, outF], wData));
    const hasBias = checkpoint.tensors.has(`${module}.bias`);
    const product = fp16
      ? g.node("Cast", [g.node("MatMul", [g.node("Cast", [x], { to: DataType.FLOAT16 }), w], {}, { name: `${module}/MatMul` })], { to: F }) // fp16 MatMul, [b, s, out] f32
      : g.node("MatMul", [x, w], {}, { name: `${module}/MatMul` });
    const base = hasBias ? g.node("Add", [product, weight(`${module}.bias`)], {}, { name: `${module}/Bias` }) : product; // [b, s, out]
    if (opts.lora === false) {
      targets.push({ module, weight: `${module}.weight`, layout: "in_out" });
      return base;
    }
    // Per-row path in rank chunks: chunk n (of ⌈rᵢ/K⌉ per row, K chosen per step) belongs to row rows[n].
    const at = g.input(`${module}.lora_at`, F, [`N.${module}`, inF, `K.${module}`]); // [N, in, K]
    const bt = g.input(`${module}.lora_bt`, F, [`N.${module}`, `K.${module}`, outF]); // [N, K, out]
    const rows = g.input(`${module}.lora_rows`, DataType.INT64, [`N.${module}`]); // [N]
    const ac = g.input(`${module}.lora_ac`, F, [inF, `Rc.${module}`]); // [in, Rc]
    const bc = g.input(`${module}.lora_bc`, F, [`Rc.${module}`, outF]); // [Rc, out]
    const mask = g.input(`${module}.lora_mask`, F, ["batch", 1, `Rc.${module}`]); // [batch, 1, Rc]
    targets.push({ module, weight: `${module}.weight`, layout: "in_out", at, bt, rows, ac, bc, mask });
    const xc = g.node("MatMul", [x, ac], {}, { name: `${module}/lora_Ac` }); // [b, s, Rc]
    // Selection, not multiplication: another row's column may hold ±∞ for this row (0 · ∞ = NaN).
    const own = g.node("Where", [g.node("Cast", [mask], { to: DataType.BOOL }), xc, zero], {}, { name: `${module}/lora_mask` }); // [b, s, Rc]: the row's own columns
    const shared = g.node("MatMul", [own, bc], {}, { name: `${module}/lora_Bc` }); // [b, s, out]
    const withShared = g.node("Add", [base, shared], {}, { name: `${module}/AddShared` }); // [b, s, out]
    const xg = g.node("Gather", [x, rows], { axis: 0 }, { name: `${module}/lora_rows` }); // [N, s, in]: each chunk's row
    const xa = g.node("MatMul", [xg, at], {}, { name: `${module}/lora_A` }); // [N, s, K]
    const delta = g.node("MatMul", [xa, bt], {}, { name: `${module}/lora_B` }); // [N, s, out]
    // Each chunk's product is added into its own row (several chunks of one row accumulate).
    return g.node("ScatterND", [withShared, g.node("Unsqueeze", [rows, axis1]), delta], { reduction: "add" }, { name: `${module}/AddDelta` }); // [b, s, out]
  };

  const half = g.int64s([hd / 2, hd / 2]);
  const applyRope = (x: string): string => {
    const [x1, x2] = g.nodeMulti("Split", [x, half], { axis: -1 }, { outputs: 2 });
    const rotated = g.node("Concat", [g.node("Neg", [x2]), x1], { axis: -1 });
    return g.node("Add", [g.node("Mul", [x, cos]), g.node("Mul", [rotated, sin])]);
  };
  const toHeads = (x: string, heads: number) => g.node("Transpose", [g.node("Reshape", [x, g.int64s([0, 0, heads, hd])])], { perm: [0, 2, 1, 3] }); // [b, heads, s, hd]
  // The mask for grouped queries (row r of g·s is query r mod s): [b, 1, g·s, T], computed once.
  const groupedBias = groups === 1 ? bias : g.node("Tile", [bias, g.int64s([1, 1, groups, 1])]);

  const embed = tensor("model.embed_tokens.weight");
  let x = fp16
    ? g.node("Cast", [g.node("Gather", [g.initializer(blob.addFloat16("model.embed_tokens.weight", embed.shape, embed.data)), inputIds])], { to: F }) // [b, s, d]
    : g.node("Gather", [weight("model.embed_tokens.weight"), inputIds]); // [b, s, d]
  for (let layer = 0; layer < config.numLayers; layer++) {
    const p = `model.layers.${layer}`;
    const [tq, tk, tv, to, tg, tu, tdn] = llamaLayerTargets(config, layer);
    const h = rmsNorm(x, weight(`${p}.input_layernorm.weight`));
    const q = applyRope(toHeads(linear(h, tq.module, tq.in, tq.out), H)); // [b, H, s, hd]
    const k = applyRope(toHeads(linear(h, tk.module, tk.in, tk.out), KVH)); // [b, KVH, s, hd]
    const v = toHeads(linear(h, tv.module, tv.in, tv.out), KVH); // [b, KVH, s, hd]
    const pastK = g.input(`past_key_values.${layer}.key`, F, ["batch", KVH, "past", hd]);
    const pastV = g.input(`past_key_values.${layer}.value`, F, ["batch", KVH, "past", hd]);
    // Only this step's entries leave the graph; the runtime keeps each row's cache.
    g.output(g.node("Identity", [k], {}, { output: `new.${layer}.key` }), F, ["batch", KVH, "seq", hd]); // [b, KVH, s, hd]
    g.output(g.node("Identity", [v], {}, { output: `new.${layer}.value` }), F, ["batch", KVH, "seq", hd]);
    const presentK = g.node("Concat", [pastK, k], { axis: 2 }); // [b, KVH, T, hd]
    const presentV = g.node("Concat", [pastV, v], { axis: 2 }); // [b, KVH, T, hd]
    // GQA without copying K/V: the g query heads sharing a KV head are folded into the row axis.
    const qGrouped = g.node("Reshape", [q, g.int64s([0, KVH, -1, hd])]); // [b, KVH, g·s, hd]
    const kT = g.node("Transpose", [presentK], { perm: [0, 1, 3, 2] }); // [b, KVH, hd, T]
    const scores = g.node("Add", [g.node("Mul", [g.node("MatMul", [qGrouped, kT]), g.scalar(1 / Math.sqrt(hd))]), groupedBias]); // [b, KVH, g·s, T]
    const probs = g.node("Softmax", [scores], { axis: -1 }); // [b, KVH, g·s, T]
    const attn = g.node("Reshape", [g.node("MatMul", [probs, presentV]), g.int64s([0, H, -1, hd])]); // [b, H, s, hd]
    const merged = g.node("Reshape", [g.node("Transpose", [attn], { perm: [0, 2, 1, 3] }), g.int64s([0, 0, H * hd])]); // [b, s, H·hd]
    x = g.node("Add", [x, linear(merged, to.module, to.in, to.out)]);
    const h2 = rmsNorm(x, weight(`${p}.post_attention_layernorm.weight`));
    const gate = linear(h2, tg.module, tg.in, tg.out);
    const silu = g.node("Mul", [gate, g.node("Sigmoid", [gate])]);
    const up = linear(h2, tu.module, tu.in, tu.out);
    x = g.node("Add", [x, linear(g.node("Mul", [silu, up]), tdn.module, tdn.in, tdn.out)]);
  }
  const normed = rmsNorm(x, weight("model.norm.weight")); // [b, s, d]
  const index = g.node("Expand", [g.node("Unsqueeze", [logitsPositions, g.int64s([2])]), g.int64s([1, 1, config.hiddenSize])]); // [b, n, d]
  const picked = g.node("GatherElements", [normed, index], { axis: 1 }); // [b, n, d]
  const head = lmHeadWeight(checkpoint);
  const headData = transpose2d(head.data, config.vocabSize, config.hiddenSize); // [d, vocab]
  if (fp16) {
    const lmHead = g.initializer(blob.addFloat16("lm_head.weight", [config.hiddenSize, config.vocabSize], headData));
    g.node("Cast", [g.node("MatMul", [g.node("Cast", [picked], { to: DataType.FLOAT16 }), lmHead])], { to: F }, { output: "logits" }); // [b, n, vocab]
  } else {
    const lmHead = g.initializer(blob.add("lm_head.weight", [config.hiddenSize, config.vocabSize], headData));
    g.node("MatMul", [picked, lmHead], {}, { output: "logits" }); // [b, n, vocab]
  }
  g.output("logits", F, ["batch", "n_logits", config.vocabSize]);

  const spec: GraphSpec = {
    format: 1,
    graphFile: LLAMA_GRAPH_FILE,
    weightsFile: LLAMA_WEIGHTS_FILE,
    inputIds: { name: inputIds, type: "int64" },
    positionIds: { name: positionIds, type: "int64" },
    mask: { kind: "bias", name: bias },
    logitsPositions,
    logits: "logits",
    kv: {
      layout: "separate-new",
      pastKey: "past_key_values.{i}.key",
      pastValue: "past_key_values.{i}.value",
      newKey: "new.{i}.key",
      newValue: "new.{i}.value",
      layers: config.numLayers,
      heads: KVH,
      headDim: hd,
    },
    targets,
  };
  return { graph: g.encode("loraedge-llama"), weights: blob.bytes(), spec };
}
