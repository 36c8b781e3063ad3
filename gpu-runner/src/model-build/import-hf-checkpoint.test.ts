import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tensorToFloat32, writeSafetensors } from "#core/safetensors/index";
import { referenceForward } from "../reference/index.js";
import type { LlamaCheckpoint } from "./checkpoint.js";
import { importHfCheckpoint } from "./import-hf-checkpoint.js";
import type { LlamaConfig } from "./llama-config.js";
import { loadModel } from "../model/load-model.js";
import { seededLlamaCheckpoint } from "./seeded-checkpoint.js";
import { randomMix, relErr } from "../model/testing/random-mix.js";

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await fs.mkdtemp(path.join(os.tmpdir(), "loraedge-hf-"));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
});

const WORDS = ["<unk>", "<s>", "</s>", ...Array.from({ length: 97 }, (_, i) => `w${i}`)];

/** A small WordLevel tokenizer.json (whitespace split), as HF `tokenizers` writes it. */
function wordLevelTokenizer(): unknown {
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

/** Writes a checkpoint in HF layout: config.json, tokenizer.json, weights in 1 file or `shards` shards with an index. */
async function writeHfCheckpoint(dir: string, ck: LlamaCheckpoint, shards: number, dtype: "F32" | "F16"): Promise<void> {
  const c = ck.config;
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
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
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: dtype === "F32" ? "float32" : "float16",
  };
  await fs.writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  await fs.writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(wordLevelTokenizer()));
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

/** The values the file holds (F16 rounds), read back with core's converter: what the reference must use. */
function asStored(ck: LlamaCheckpoint, dtype: "F32" | "F16"): LlamaCheckpoint {
  if (dtype === "F32") return ck;
  const tensors = new Map([...ck.tensors].map(([n, t]) => [n, { shape: t.shape, data: tensorToFloat32({ dtype, data: writeSafetensorsBytes(n, t, dtype) }) }]));
  return { config: ck.config, tensors };
}
function writeSafetensorsBytes(name: string, t: { shape: number[]; data: Float32Array }, dtype: "F16"): Uint8Array {
  const file = writeSafetensors([{ name, dtype, shape: t.shape, data: t.data }]);
  return file.subarray(file.length - t.data.length * 2);
}

const base: LlamaConfig = {
  vocabSize: 100,
  hiddenSize: 48,
  numLayers: 2,
  numHeads: 6,
  numKvHeads: 2,
  headDim: 8,
  intermediateSize: 96,
  contextLength: 128,
  ropeTheta: 500000,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: false,
};

describe("importHfCheckpoint", () => {
  for (const variant of [
    { name: "sharded F32 with index", shards: 3, dtype: "F32" as const, config: base, backend: "node" as const },
    { name: "single-file F16, tied embeddings, MHA", shards: 1, dtype: "F16" as const, config: { ...base, numKvHeads: 6, tieWordEmbeddings: true }, backend: "web" as const },
  ]) {
    it(`${variant.name} (${variant.backend} backend): the imported ONNX model equals the reference forward on the checkpoint's tensors`, async () => {
      const src = await tmp();
      const out = await tmp();
      const ck = seededLlamaCheckpoint(variant.config, 77);
      await writeHfCheckpoint(src, ck, variant.shards, variant.dtype);
      await importHfCheckpoint(src, out, { id: "synthetic-llama" });
      const model = await loadModel(out, { backend: variant.backend, threads: 1 });
      try {
        expect(model.manifest).toMatchObject({ id: "synthetic-llama", architecture: "llama", vocabSize: 100, numKvHeads: variant.config.numKvHeads, tokenizer: { kind: "hf", bosId: 1, eosId: 2 } });
        const ids = model.tokenizer.encode("w3 w14 w15 w92 w65 w35");
        expect(ids).toEqual([6, 17, 18, 95, 68, 38]);
        expect(model.tokenizer.decode(ids)).toBe("w3 w14 w15 w92 w65 w35");
        const stored = asStored(ck, variant.dtype);
        const mix = randomMix(model.manifest.targets, (m) => (m.includes("layers.1") ? 5 : 2), 3);
        const tokens = [1, ...ids];
        const [plain, lora] = await model.step(
          [
            { tokens, cache: null, mix: null },
            { tokens: tokens.slice(0, 4), cache: null, mix },
          ],
          { allLogits: true },
        );
        expect(relErr(plain.logits, referenceForward(stored, tokens, null))).toBeLessThanOrEqual(1e-4);
        expect(relErr(lora.logits, referenceForward(stored, tokens.slice(0, 4), mix))).toBeLessThanOrEqual(1e-4);
      } finally {
        await model.dispose();
      }
    });
  }

  it("refuses what the graph cannot represent, with the reason", async () => {
    const src = await tmp();
    const ck = seededLlamaCheckpoint(base, 1);
    await writeHfCheckpoint(src, ck, 1, "F32");
    const config = JSON.parse(await fs.readFile(path.join(src, "config.json"), "utf8"));
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, rope_scaling: { type: "linear", factor: 2 } }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/rope_scaling/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, model_type: "gpt_neox" }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/model_type "gpt_neox"/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 3 }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/missing tensor model\.layers\.2/);
  });
});
