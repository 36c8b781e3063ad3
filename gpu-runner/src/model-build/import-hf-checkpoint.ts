/**
 * Imports a Hugging Face Llama-family checkpoint directory (config.json, model.safetensors or
 * model.safetensors.index.json + shards, tokenizer.json [+ tokenizer_config.json]) into the
 * runner's graph layout (buildLlamaGraph) with the real tokenizer. Weights become float32, or
 * float16 with `dtype: "float16"`.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { readSafetensors, tensorToFloat32 } from "#core/safetensors/index";
import { validateLlamaCheckpoint, type LlamaCheckpoint, type NamedTensor } from "./checkpoint.js";
import type { LlamaConfig } from "./llama-config.js";
import { buildLlamaGraph } from "./llama-graph.js";
import { llamaManifest } from "./llama-manifest.js";
import { writeModelDir } from "../model/model-dir.js";
import { readTokenizerFiles } from "./tokenizer-files.js";
import { importedTokenizer } from "./tokenizer-manifest.js";

export interface ImportHfOptions {
  /** Model id in the manifest (default: the source directory's name). */
  id?: string;
  /** Context length of the graph's rotary table (default: min(max_position_embeddings, 4096)). */
  contextLength?: number;
  /** Manifest maxRank (default 64). */
  maxRank?: number;
  /** Called as weight shards are read: bytes so far, bytes in all. */
  onProgress?: (done: number, total: number) => void;
  /** Stored weights: "float32" (default) or "float16" (projections, embedding, lm_head; fp16 MatMuls, see buildLlamaGraph). */
  dtype?: "float32" | "float16";
}

/** model_type values whose config maps onto the Llama graph (qwen2: q/k/v biases). */
const SUPPORTED_MODEL_TYPES = new Set(["llama", "mistral", "qwen2"]);
/** Tensors some checkpoints carry that the graph recomputes. */
const IGNORED_TENSOR = /\.rotary_emb\.inv_freq$/;

async function readJsonFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new Error(`HF import: cannot read ${file}: ${(err as Error).message}`);
  }
  const value: unknown = JSON.parse(text);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`HF import: ${file} is not a JSON object`);
  return value as Record<string, unknown>;
}

function int(config: Record<string, unknown>, key: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new Error(`HF import: config.json ${key} must be a positive integer, got ${JSON.stringify(config[key])}`);
  return v;
}

/** config.json → LlamaConfig, refusing what the graph does not implement. */
export function llamaConfigFromHf(hf: Record<string, unknown>, contextLength?: number): LlamaConfig {
  const modelType = String(hf.model_type ?? "");
  if (!SUPPORTED_MODEL_TYPES.has(modelType)) throw new Error(`HF import: model_type "${modelType}" is not supported (expected ${[...SUPPORTED_MODEL_TYPES].join(", ")})`);
  if ((hf.hidden_act ?? "silu") !== "silu") throw new Error(`HF import: hidden_act "${String(hf.hidden_act)}" is not supported (silu only)`);
  if (hf.rope_scaling != null) throw new Error("HF import: rope_scaling is not supported");
  if (hf.attention_bias === true || hf.mlp_bias === true) throw new Error(`HF import: config.json ${hf.attention_bias === true ? "attention_bias" : "mlp_bias"} = true is not supported (o_proj/MLP biases)`);
  if (hf.sliding_window != null && (modelType === "mistral" || hf.use_sliding_window === true)) throw new Error(`HF import: config.json sliding_window = ${JSON.stringify(hf.sliding_window)} (sliding-window attention) is not supported; set it to null for full attention`);
  for (const moe of ["num_local_experts", "num_experts", "n_routed_experts"]) {
    if (typeof hf[moe] === "number" && (hf[moe] as number) > 0) throw new Error(`HF import: config.json ${moe} = ${String(hf[moe])} (mixture of experts) is not supported`);
  }
  const hidden = int(hf, "hidden_size");
  const heads = int(hf, "num_attention_heads");
  const maxPos = int(hf, "max_position_embeddings", 2048);
  return {
    vocabSize: int(hf, "vocab_size"),
    hiddenSize: hidden,
    numLayers: int(hf, "num_hidden_layers"),
    numHeads: heads,
    numKvHeads: int(hf, "num_key_value_heads", heads),
    headDim: int(hf, "head_dim", Math.floor(hidden / heads)),
    intermediateSize: int(hf, "intermediate_size"),
    contextLength: contextLength ?? Math.min(maxPos, 4096),
    ropeTheta: typeof hf.rope_theta === "number" ? hf.rope_theta : 10000,
    rmsNormEps: typeof hf.rms_norm_eps === "number" ? hf.rms_norm_eps : 1e-6,
    tieWordEmbeddings: hf.tie_word_embeddings === true,
    ...(modelType === "qwen2" ? { qkvBias: true } : {}),
  };
}

/** Every tensor of the checkpoint as float32 (single file or sharded with an index). */
export async function readHfTensors(srcDir: string, onProgress?: (done: number, total: number) => void): Promise<Map<string, NamedTensor>> {
  const indexFile = path.join(srcDir, "model.safetensors.index.json");
  let files: string[];
  let expected: Map<string, string> | null = null;
  try {
    const index = await readJsonFile(indexFile);
    const map = index.weight_map;
    if (typeof map !== "object" || map === null) throw new Error(`HF import: ${indexFile} has no weight_map`);
    expected = new Map(Object.entries(map as Record<string, string>));
    files = [...new Set(expected.values())].sort();
  } catch (err) {
    if (!(err as Error).message.includes("cannot read")) throw err;
    files = ["model.safetensors"];
  }
  const tensors = new Map<string, NamedTensor>();
  let total = 0;
  let done = 0;
  if (onProgress) for (const file of files) total += await fs.stat(path.join(srcDir, path.basename(file))).then((s) => s.size, () => 0);
  for (const file of files) {
    if (file.includes("/") || file.includes("..")) throw new Error(`HF import: shard name ${file} must be a plain file name`);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(path.join(srcDir, file)));
    } catch (err) {
      throw new Error(`HF import: cannot read weights ${path.join(srcDir, file)}: ${(err as Error).message}`);
    }
    done += bytes.byteLength;
    onProgress?.(done, Math.max(total, done));
    for (const [name, t] of readSafetensors(bytes).tensors) {
      if (tensors.has(name)) throw new Error(`HF import: tensor ${name} appears in two shards`);
      if (expected && expected.get(name) !== file) throw new Error(`HF import: tensor ${name} found in ${file} but the index maps it to ${expected.get(name) ?? "nothing"}`);
      tensors.set(name, { shape: t.shape, data: Float32Array.from(tensorToFloat32(t)) });
    }
  }
  if (expected) for (const name of expected.keys()) if (!tensors.has(name)) throw new Error(`HF import: index lists ${name} but no shard holds it`);
  return tensors;
}

/** Reads a HF checkpoint directory into a validated LlamaCheckpoint. */
export async function readHfCheckpoint(srcDir: string, opts: { contextLength?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<LlamaCheckpoint> {
  const config = llamaConfigFromHf(await readJsonFile(path.join(srcDir, "config.json")), opts.contextLength);
  const tensors = await readHfTensors(srcDir, opts.onProgress);
  const checkpoint: LlamaCheckpoint = { config, tensors: new Map() };
  for (const [name, t] of tensors) {
    if (IGNORED_TENSOR.test(name)) continue;
    checkpoint.tensors.set(name, t);
  }
  validateLlamaCheckpoint(checkpoint);
  const expectedNames = new Set(["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]);
  for (const name of checkpoint.tensors.keys()) {
    if (!expectedNames.has(name) && !/^model\.layers\.\d+\.(input_layernorm|post_attention_layernorm|self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/.test(name) && !(checkpoint.config.qkvBias && /^model\.layers\.\d+\.self_attn\.[qkv]_proj\.bias$/.test(name))) {
      throw new Error(`HF import: unexpected tensor ${name} (the Llama graph has no place for it)`);
    }
  }
  return checkpoint;
}

export async function importHfCheckpoint(srcDir: string, outDir: string, opts: ImportHfOptions = {}): Promise<ModelManifest> {
  const hf = await readJsonFile(path.join(srcDir, "config.json"));
  const checkpoint = await readHfCheckpoint(srcDir, { ...(opts.contextLength ? { contextLength: opts.contextLength } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  const { tokenizerJson, tokenizerConfig, generationConfig } = await readTokenizerFiles(srcDir, "HF import");
  const built = buildLlamaGraph(checkpoint, { weightDtype: opts.dtype ?? "float32" });
  const id = opts.id ?? path.basename(path.resolve(srcDir));
  const manifest = llamaManifest({
    id,
    config: checkpoint.config,
    tokenizer: importedTokenizer({ what: "HF import", configName: "config.json", bos: hf.bos_token_id, eos: hf.eos_token_id, generationConfig, tokenizerJson, vocabSize: checkpoint.config.vocabSize }),
    maxRank: opts.maxRank ?? 64,
    dtype: opts.dtype ?? "float32",
    source: { importer: "hf-checkpoint", source: path.basename(path.resolve(srcDir)), modelType: hf.model_type, config: checkpoint.config },
  });
  await writeModelDir(outDir, { manifest, spec: built.spec, graph: built.graph, weights: built.weights, tokenizerJson, tokenizerConfig });
  return manifest;
}
