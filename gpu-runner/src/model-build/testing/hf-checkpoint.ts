/**
 * Test support (imported by tests only): a seeded Llama-family checkpoint written in Hugging Face
 * layout (config.json, tokenizer.json, safetensors in one file or shards with an index; F32, F16 or
 * BF16), as `save_pretrained` would, and the values such a file really holds.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { tensorToFloat32, writeSafetensors, type SafetensorsDtype } from "#core/safetensors/index";
import type { LlamaCheckpoint } from "../checkpoint.js";

export const WORDS = ["<unk>", "<s>", "</s>", ...Array.from({ length: 97 }, (_, i) => `w${i}`)];

/** A small WordLevel tokenizer.json (whitespace split), as HF `tokenizers` writes it. */
export function wordLevelTokenizer(): unknown {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [
      { id: 1, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: { type: "WordPiece", prefix: "##", cleanup: false },
    model: { type: "WordLevel", vocab: Object.fromEntries(WORDS.map((w, i) => [w, i])), unk_token: "<unk>" },
  };
}

/** GPT-2's byte → printable character map (byte-level BPE). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out: string[] = new Array(256);
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i])));
  return out;
}

/** Ids of the byte-level tokenizer's special tokens; its vocabulary has BYTE_LEVEL_VOCAB entries. */
export const BYTE_LEVEL_SPECIAL = { bos: 256, eos: 257 } as const;
export const BYTE_LEVEL_VOCAB = 258;

/**
 * A byte-level BPE tokenizer.json without merges (one token per byte, any text encodes), with
 * <s> = 256 and </s> = 257: what a chat test needs from a generated checkpoint.
 */
export function byteLevelTokenizer(): unknown {
  const chars = bytesToUnicode();
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(BYTE_LEVEL_SPECIAL.bos, "<s>"), special(BYTE_LEVEL_SPECIAL.eos, "</s>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: Object.fromEntries(chars.map((c, i) => [c, i])), merges: [] },
  };
}

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

export interface WriteHfOptions {
  shards?: number;
  dtype?: SafetensorsDtype;
  /** config.json model_type (default "llama"; "qwen2" needs a checkpoint with q/k/v biases). */
  modelType?: string;
  /** Extra tokenizer_config.json (e.g. a chat_template); absent = none written. */
  tokenizerConfig?: Record<string, unknown>;
  /** "word-level" (default: WORDS, whitespace split) or "byte-level" (any text; needs vocabSize ≥ BYTE_LEVEL_VOCAB). */
  tokenizer?: "word-level" | "byte-level";
}

/** Writes a checkpoint in HF layout: config.json, tokenizer.json, weights in 1 file or `shards` shards with an index. */
export async function writeHfCheckpoint(dir: string, ck: LlamaCheckpoint, opts: WriteHfOptions = {}): Promise<void> {
  const shards = opts.shards ?? 1;
  const dtype = opts.dtype ?? "F32";
  const c = ck.config;
  const config = {
    architectures: [opts.modelType === "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: opts.modelType ?? "llama",
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    intermediate_size: c.intermediateSize,
    max_position_embeddings: c.contextLength,
    rope_theta: c.ropeTheta,
    rms_norm_eps: c.rmsNormEps,
    tie_word_embeddings: c.tieWordEmbeddings,
    hidden_act: "silu",
    bos_token_id: opts.tokenizer === "byte-level" ? BYTE_LEVEL_SPECIAL.bos : 1,
    eos_token_id: opts.tokenizer === "byte-level" ? BYTE_LEVEL_SPECIAL.eos : 2,
    torch_dtype: TORCH_DTYPE[dtype],
    ...(opts.modelType === "qwen2" ? { use_sliding_window: false, sliding_window: 4096 } : {}),
  };
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(opts.tokenizer === "byte-level" ? byteLevelTokenizer() : wordLevelTokenizer()));
  if (opts.tokenizerConfig) await fs.writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(opts.tokenizerConfig));
  const names = [...ck.tensors.keys()];
  if (shards === 1) {
    await fs.writeFile(path.join(dir, "model.safetensors"), writeSafetensors(names.map((name) => ({ name, dtype, ...ck.tensors.get(name)! }))));
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-0000${s + 1}-of-0000${shards}.safetensors`;
    const part = names.filter((_, i) => i % shards === s);
    for (const n of part) weightMap[n] = file;
    await fs.writeFile(path.join(dir, file), writeSafetensors(part.map((name) => ({ name, dtype, ...ck.tensors.get(name)! }))));
  }
  await fs.writeFile(path.join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
}

/** The values the file holds (F16/BF16 round), read back with core's converter: what a reference must use. */
export function asStored(ck: LlamaCheckpoint, dtype: SafetensorsDtype): LlamaCheckpoint {
  if (dtype === "F32") return ck;
  const tensors = new Map(
    [...ck.tensors].map(([name, t]) => {
      const file = writeSafetensors([{ name, dtype, shape: t.shape, data: t.data }]);
      return [name, { shape: t.shape, data: tensorToFloat32({ dtype, data: file.subarray(file.length - t.data.length * 2) }) }] as const;
    }),
  );
  return { config: ck.config, tensors };
}
