/**
 * `npm run model:import`: source detection, atomic writes, and bad imports (unknown family, missing
 * files, wrong shapes, truncated external data) refused with one clear line and no model directory
 * left behind. The CLI itself is run as a process for a success and a failure.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { describeImport, importModel } from "./import-model.js";
import type { LlamaConfig } from "./llama-config.js";
import { seededLlamaCheckpoint } from "./seeded-checkpoint.js";
import { writeHfCheckpoint } from "./testing/hf-checkpoint.js";
import { useTempDirs } from "./testing/temp-dirs.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const LLAMA = path.join(REPO, "..", "shared", "fixtures", "tiny-random-llama-fp16");
const present = fs.existsSync(path.join(LLAMA, "model.onnx.data"));
if (!present) console.warn(`skipping GenAI export import tests: ${LLAMA} is absent`);

const tmp = useTempDirs("import");

/** A writable copy of the fixture (tests break copies, never the fixture). */
async function copyFixture(): Promise<string> {
  const dir = path.join(await tmp(), "tiny-llama");
  await fsp.cp(LLAMA, dir, { recursive: true });
  for (const f of await fsp.readdir(dir)) await fsp.chmod(path.join(dir, f), 0o644);
  await fsp.chmod(dir, 0o755);
  return dir;
}

const config: LlamaConfig = { vocabSize: 100, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8, intermediateSize: 64, contextLength: 128, ropeTheta: 10000, rmsNormEps: 1e-6, tieWordEmbeddings: false };

/** Expects the import to fail with `message` and the cache to hold nothing (no directory, no temp). */
async function expectRefused(source: string, message: RegExp, opts: Parameters<typeof importModel>[1] = {}): Promise<void> {
  const cache = await tmp();
  const error = await importModel(source, { ...opts, cacheDir: cache }).then(
    () => null,
    (err: Error) => err,
  );
  expect(error?.message).toMatch(message);
  expect(error?.message).not.toContain("\n");
  expect(await fsp.readdir(cache)).toEqual([]);
}

describe("importModel", () => {
  it("imports a generated HF Llama checkpoint (fp32 and bf16) with one call into the cache", async () => {
    for (const dtype of ["F32", "BF16"] as const) {
      const src = path.join(await tmp(), `llama-${dtype.toLowerCase()}`);
      await writeHfCheckpoint(src, seededLlamaCheckpoint(config, 5), { dtype, shards: dtype === "F32" ? 1 : 2, tokenizerConfig: { chat_template: "{{ messages[0].content }}", model_max_length: 128 } });
      if (dtype === "BF16") {
        await fsp.writeFile(path.join(src, "tokenizer_config.json"), "{}");
        await fsp.writeFile(path.join(src, "chat_template.jinja"), "{% for m in messages %}{{ m.content }}{% endfor %}");
      }
      const cache = await tmp();
      const imported = await importModel(src, { cacheDir: cache, maxRank: 16 });
      expect(imported).toMatchObject({ dir: path.join(cache, `llama-${dtype.toLowerCase()}`), kind: "hf-checkpoint" });
      expect(imported.manifest).toMatchObject({ id: `llama-${dtype.toLowerCase()}`, architecture: "llama", dtype: "float32", numLayers: 2, hiddenSize: 32, maxRank: 16 });
      expect(await fsp.readdir(cache)).toEqual([`llama-${dtype.toLowerCase()}`]);
      const lines = describeImport(imported);
      expect(lines[1]).toContain("2 layers, hidden 32, heads 4 (KV 2, head dim 8), intermediate 64, vocabulary 100");
      expect(lines[2]).toContain("14 unmerged (LoRA inputs), 0 merge-only");
      // tokenizer_config.json travels with the model; a chat_template.jinja beside it becomes its chat_template.
      expect(JSON.parse(await fsp.readFile(path.join(imported.dir, "tokenizer_config.json"), "utf8"))).toEqual(dtype === "F32" ? { chat_template: "{{ messages[0].content }}", model_max_length: 128 } : { chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}" });
      // An existing destination is never replaced.
      await expect(importModel(src, { cacheDir: cache })).rejects.toThrow(/already exists/);
    }
  });

  it("refuses sources that are not model directories, and HF checkpoints it cannot represent", async () => {
    await expectRefused(path.join(await tmp(), "nope"), /does not exist/);
    const empty = await tmp();
    await expectRefused(empty, /neither a Hugging Face checkpoint \(config\.json/);
    const src = path.join(await tmp(), "ck");
    await writeHfCheckpoint(src, seededLlamaCheckpoint(config, 1));
    const hf = JSON.parse(await fsp.readFile(path.join(src, "config.json"), "utf8"));
    await fsp.writeFile(path.join(src, "config.json"), JSON.stringify({ ...hf, model_type: "gpt_neox" }));
    await expectRefused(src, /model_type "gpt_neox" is not supported/);
    // Wrong shapes: the config says 48 wide, the tensors are 32.
    await fsp.writeFile(path.join(src, "config.json"), JSON.stringify({ ...hf, hidden_size: 48 }));
    await expectRefused(src, /has shape \[100, 32\], expected \[100, 48\]/);
    await fsp.writeFile(path.join(src, "config.json"), JSON.stringify(hf));
    await fsp.rm(path.join(src, "model.safetensors"));
    await expectRefused(src, /cannot read weights .*model\.safetensors/);
    // End-of-turn ids of generation_config.json must name tokens of the vocabulary.
    await fsp.writeFile(path.join(src, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 100] }));
    await writeHfCheckpoint(src, seededLlamaCheckpoint(config, 1));
    await expectRefused(src, /^HF import: generation_config\.json eos_token_id 100 is outside the vocabulary \(100 tokens\)$/);
    await fsp.writeFile(path.join(src, "generation_config.json"), JSON.stringify({ eos_token_id: "</s>" }));
    await expectRefused(src, /generation_config\.json eos_token_id must be a token id or a list of token ids, got "<\/s>"/);
    await fsp.rm(path.join(src, "generation_config.json"));
    await expectRefused(src, /--max-rank must be a positive integer/, { maxRank: 0 });
    await expectRefused(src, /model id "bad id" must be/, { id: "bad id" });
  });

  describe.skipIf(!present)("ONNX Runtime GenAI exports", () => {
    it("imports the fp16 export as fp16, or as fp32 with --dtype fp32", async () => {
      const cache = await tmp();
      const fp16 = await importModel(LLAMA, { cacheDir: cache });
      expect(fp16.manifest).toMatchObject({ dtype: "float16", architecture: "llama", source: { family: "genai-llama" } });
      // The Llama-2 vocabulary's byte bound (its longest entries are runs of 16 "▁", 3 bytes each); no generation_config.json: no end-of-turn ids.
      expect(fp16.manifest.tokenizer).toEqual({ kind: "hf", bosId: 0, eosId: 1, maxBytesPerToken: 48 });
      const fp32 = await importModel(LLAMA, { cacheDir: cache, id: "tiny-llama-fp32", dtype: "fp32" });
      expect(fp32.manifest).toMatchObject({ dtype: "float32", source: { upcastFrom: "float16" } });
      expect(fp32.weightBytes).toBeGreaterThan(1.9 * fp16.weightBytes);
      expect((await fsp.readdir(cache)).sort()).toEqual(["tiny-llama-fp32", "tiny-random-llama-fp16"]);
    });

    it("refuses an unknown family, missing files, wrong shapes and truncated external data", async () => {
      const unknown = await copyFixture();
      const genai = JSON.parse(await fsp.readFile(path.join(unknown, "genai_config.json"), "utf8"));
      await fsp.writeFile(path.join(unknown, "genai_config.json"), JSON.stringify({ model: { ...genai.model, type: "phi3" } }));
      await expectRefused(unknown, /model\.type "phi3" is not a supported family \(supported: gpt2, llama, mistral, qwen2\)/);

      const noData = await copyFixture();
      await fsp.rm(path.join(noData, "model.onnx.data"));
      await expectRefused(noData, /external data file .*model\.onnx\.data is missing \(ENOENT\)/);
      const noGraph = await copyFixture();
      await fsp.rm(path.join(noGraph, "model.onnx"));
      await expectRefused(noGraph, /cannot read the graph .*model\.onnx \(ENOENT\)/);
      const noTokenizer = await copyFixture();
      await fsp.rm(path.join(noTokenizer, "tokenizer.json"));
      await expectRefused(noTokenizer, /cannot read .*tokenizer\.json/);

      const truncated = await copyFixture();
      await fsp.truncate(path.join(truncated, "model.onnx.data"), 1_500_000);
      await expectRefused(truncated, /external data model\.onnx\.data is truncated: 1500000 bytes, initializer lm_head\.MatMul\.weight needs bytes 1106080–2130080/);

      // Wrong shapes: a weight whose declared dims disagree with its bytes.
      const wrongShape = await copyFixture();
      const graph = await fsp.readFile(path.join(wrongShape, "model.onnx"));
      const { decodeModel, encodeModel } = await import("../onnx/index.js");
      const model = decodeModel(new Uint8Array(graph));
      model.graph!.initializer!.find((t) => t.name === "model.layers.0.attn.q_proj.MatMul.weight")!.dims = [16, 24];
      await fsp.writeFile(path.join(wrongShape, "model.onnx"), encodeModel(model));
      await expectRefused(wrongShape, /initializer model\.layers\.0\.attn\.q_proj\.MatMul\.weight has 512 bytes of external data, its shape needs 768/);

      const packed = await copyFixture();
      const packedModel = decodeModel(new Uint8Array(graph));
      packedModel.graph!.initializer!.find((t) => t.name === "model.layers.1.attn.q_proj.MatMul.weight")!.name = "model.layers.1.attn.qkv_proj.MatMul.weight";
      await fsp.writeFile(path.join(packed, "model.onnx"), encodeModel(packedModel));
      await expectRefused(packed, /has a packed q\/k\/v projection .*: model\.layers\.1\.attn\.qkv_proj\.MatMul\.weight/);

      const notOnnx = await copyFixture();
      await fsp.writeFile(path.join(notOnnx, "model.onnx"), "not a model");
      await expectRefused(notOnnx, /model\.onnx (is not an ONNX model|has no graph)/);
    });

    it("the CLI prints what it found and exits 0; a bad import exits 1 with one line on stderr and leaves nothing", async () => {
      const cache = await tmp();
      const run = promisify(execFile);
      const tsx = path.join(REPO, "node_modules", ".bin", "tsx");
      const env = { ...process.env, LORAEDGE_MODEL_CACHE: cache };
      const cli = path.join(REPO, "gpu-runner", "src", "cli", "import-model.ts");
      const ok = await run(tsx, [cli, LLAMA, "--id", "tiny", "--max-rank", "8"], { env });
      expect(ok.stdout).toMatch(/imported tiny \(ONNX Runtime GenAI export, genai-llama\)/);
      expect(ok.stdout).toMatch(/family llama, 2 layers, hidden 16, heads 1 \(KV 1, head dim 16\), intermediate 64, vocabulary 32000/);
      expect(ok.stdout).toMatch(/14 unmerged \(LoRA inputs\), 0 merge-only; max rank 8/);
      expect(ok.stdout).toMatch(/dtype float16, 1,065,040 parameters, weights 2\.13 MB/);
      const truncated = await copyFixture();
      await fsp.truncate(path.join(truncated, "model.onnx.data"), 1000);
      const failed = await run(tsx, [cli, truncated], { env }).then(
        () => null,
        (err: { code: number; stderr: string }) => err,
      );
      expect(failed?.code).toBe(1);
      expect(failed?.stderr.trim().split("\n")).toHaveLength(1);
      expect(failed?.stderr).toMatch(/^model:import failed: ONNX import: external data model\.onnx\.data is truncated/);
      expect(await fsp.readdir(cache)).toEqual(["tiny"]);
    });
  });
});
