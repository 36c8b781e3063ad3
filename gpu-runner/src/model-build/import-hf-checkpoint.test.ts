import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { referenceForward } from "../reference/index.js";
import { importHfCheckpoint } from "./import-hf-checkpoint.js";
import type { LlamaConfig } from "./llama-config.js";
import { loadModel } from "../model/load-model.js";
import { seededLlamaCheckpoint } from "./seeded-checkpoint.js";
import { randomMix, relErr } from "../model/testing/random-mix.js";
import { asStored, writeHfCheckpoint } from "./testing/hf-checkpoint.js";
import { useTempDirs } from "./testing/temp-dirs.js";

const tmp = useTempDirs("hf");

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
    { name: "Qwen2 (q/k/v biases), BF16, tied embeddings", shards: 2, dtype: "BF16" as const, config: { ...base, qkvBias: true, tieWordEmbeddings: true }, backend: "node" as const, modelType: "qwen2" },
  ]) {
    it(`${variant.name} (${variant.backend} backend): the imported ONNX model equals the reference forward on the checkpoint's tensors`, async () => {
      const src = await tmp();
      const out = await tmp();
      const ck = seededLlamaCheckpoint(variant.config, 77);
      await writeHfCheckpoint(src, ck, { shards: variant.shards, dtype: variant.dtype, ...("modelType" in variant ? { modelType: variant.modelType } : {}) });
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

  it("an F16 checkpoint stored as fp16 (dtype float16): kept and up-cast both ≡ the reference within fp16 rounding; merged ≡ unmerged", async () => {
    const src = await tmp();
    const out = await tmp();
    const ck = seededLlamaCheckpoint(base, 78);
    await writeHfCheckpoint(src, ck, { dtype: "F16" });
    const manifest = await importHfCheckpoint(src, out, { id: "llama-fp16", dtype: "float16" });
    expect(manifest.dtype).toBe("float16");
    const weightsBytes = (await fs.stat(path.join(out, "weights.bin"))).size;
    const stored = asStored(ck, "F16");
    const tokens = [1, 6, 17, 18, 95, 68, 38];
    for (const float16 of ["keep", "upcast"] as const) {
      const model = await loadModel(out, { backend: "node", threads: 1, float16 });
      try {
        const mix = randomMix(model.manifest.targets, (m) => (m.includes("layers.1") ? 5 : 2), 3);
        const [plain, lora] = await model.step(
          [
            { tokens, cache: null, mix: null },
            { tokens, cache: null, mix },
          ],
          { allLogits: true },
        );
        // keep: activations are rounded to fp16 at each projection; upcast: exact fp16 weights in fp32.
        const tol = float16 === "keep" ? 1e-2 : 1e-4;
        expect(relErr(plain.logits, referenceForward(stored, tokens, null)), float16).toBeLessThanOrEqual(tol);
        expect(relErr(lora.logits, referenceForward(stored, tokens, mix)), float16).toBeLessThanOrEqual(tol);
        const merged = await model.createMerged(mix);
        const [m] = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(m.logits, lora.logits), `${float16} merged`).toBeLessThanOrEqual(1e-2);
        await merged.dispose();
      } finally {
        await model.dispose();
      }
    }
    // About half the fp32 bytes (norms and rotary tables stay fp32).
    const fp32 = await tmp();
    await importHfCheckpoint(src, fp32, { id: "llama-fp32" });
    expect(weightsBytes / (await fs.stat(path.join(fp32, "weights.bin"))).size).toBeLessThan(0.6);
  });

  it("refuses what the graph cannot represent, with the reason", async () => {
    const src = await tmp();
    const ck = seededLlamaCheckpoint(base, 1);
    await writeHfCheckpoint(src, ck);
    const config = JSON.parse(await fs.readFile(path.join(src, "config.json"), "utf8"));
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, rope_scaling: { type: "linear", factor: 2 } }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/rope_scaling/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, model_type: "gpt_neox" }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/model_type "gpt_neox"/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 3 }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/missing tensor model\.layers\.2/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, model_type: "mixtral", num_local_experts: 8 }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/model_type "mixtral"/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, num_local_experts: 8 }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/num_local_experts = 8 \(mixture of experts\)/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, model_type: "mistral", sliding_window: 4096 }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/sliding_window = 4096/);
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, attention_bias: true }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/attention_bias = true/);
    // A Qwen2 config over a checkpoint without the q/k/v biases it needs.
    await fs.writeFile(path.join(src, "config.json"), JSON.stringify({ ...config, model_type: "qwen2" }));
    await expect(importHfCheckpoint(src, await tmp())).rejects.toThrow(/missing tensor model\.layers\.0\.self_attn\.q_proj\.bias/);
  });
});
