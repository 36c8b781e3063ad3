/**
 * ONNX Runtime GenAI's fp16 Llama export (../shared/fixtures/tiny-random-llama-fp16), imported with
 * LoRA inputs on its seven MatMul projections per layer. Expected values come from ONNX Runtime
 * running the ORIGINAL fixture graph (fp16), with a PEFT adapter's ΔW = s·B·A merged by this test
 * into its fp16 initializers (plain loops in fp64, rounded to fp16 once), so importer, fp16 LoRA
 * path and merger are checked independently.
 *
 * Tolerances (max |a − b| / max |b| over the logits), documented in model/README.md:
 * - keep (the stored fp16 graph): base ≡ original within 1e-3 (same fp16 kernels; ORT may fuse
 *   differently around the added LoRA nodes); LoRA unmerged vs the fp16-merged original, and
 *   merged vs unmerged, within FP16_TOL (the LoRA term is added after the fp16 MatMul instead of
 *   inside W, so the two round differently).
 * - upcast (fp32 at load): ≡ original within FP16_TOL (the original rounds activations to fp16).
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeMix } from "#core/compose/index";
import { f16ToF32, f32ToF16 } from "#core/dtype/index";
import type { ComposedMix } from "#core/lora/types";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { float16, int64, loadBackend, type BackendName } from "../backend/index.js";
import { decodeModel, encodeModel, externalLocation, toNumber, upcastFloat16 } from "../onnx/index.js";
import { importOnnxExport } from "./import-onnx-export.js";
import { loadModel } from "../model/load-model.js";
import { relErr } from "../model/testing/random-mix.js";
import { useImportedExport } from "./testing/temp-dirs.js";
import { cachedDecodeErrors } from "../model/testing/cached-decode.js";
import type { BaseModel, Float16Policy } from "../model/types.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FIXTURE = path.join(REPO, "..", "shared", "fixtures", "tiny-random-llama-fp16");
const present = fs.existsSync(path.join(FIXTURE, "model.onnx.data"));
if (!present) console.warn(`skipping GenAI Llama fp16 fixture tests: ${FIXTURE} is absent`);

const FP16_TOL = 2e-2;
const V = 32000;

/** Logits [n, vocab] of the original fp16 export, each mix module's weight replaced by f16(W + at·bt). */
async function originalLogits(backendName: BackendName, mix: ComposedMix | null, tokens: number[]): Promise<Float32Array> {
  const graph = new Uint8Array(fs.readFileSync(path.join(FIXTURE, "model.onnx")));
  const data = new Uint8Array(fs.readFileSync(path.join(FIXTURE, "model.onnx.data")));
  const inits = decodeModel(graph).graph!.initializer!;
  for (const [name, m] of mix?.modules ?? []) {
    const [, layer, kind, proj] = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)$/.exec(name)!;
    const init = inits.find((t) => t.name === `model.layers.${layer}.${kind === "self_attn" ? "attn" : "mlp"}.${proj}.MatMul.weight`)!;
    const loc = externalLocation(init)!;
    const [I, O] = init.dims!.map(toNumber); // [in, out]
    const w = f16ToF32(new Uint16Array(data.buffer.slice(loc.offset, loc.offset + 2 * I * O)));
    const merged = new Float32Array(I * O);
    for (let x = 0; x < I; x++)
      for (let y = 0; y < O; y++) {
        let acc = w[x * O + y];
        for (let c = 0; c < m.rank; c++) acc += m.at[x * m.rank + c] * m.bt[c * O + y];
        merged[x * O + y] = acc;
      }
    const bits = f32ToF16(merged);
    data.set(new Uint8Array(bits.buffer), loc.offset);
  }
  const backend = await loadBackend(backendName);
  const session = await backend.createSession(graph, { externalData: [{ path: "model.onnx.data", data }] });
  const n = tokens.length;
  const empty = float16(new Uint16Array(0), [1, 1, 0, 16]);
  const out = await session.run(
    {
      input_ids: int64(BigInt64Array.from(tokens, BigInt), [1, n]),
      position_ids: int64(BigInt64Array.from(tokens, (_, i) => BigInt(i)), [1, n]),
      attention_mask: int64(new BigInt64Array(n).fill(1n), [1, n]),
      "past_key_values.0.key": empty,
      "past_key_values.0.value": empty,
      "past_key_values.1.key": empty,
      "past_key_values.1.value": empty,
    },
    ["logits"],
  );
  await session.release();
  const logits = out.logits;
  if (logits?.type !== "float16") throw new Error("the original export should return fp16 logits");
  return f16ToF32(logits.data);
}

/** A PEFT adapter on every projection, written to PEFT files and read back the way the runner reads uploads. */
function peftMix(targets: readonly { module: string; in: number; out: number }[], seed: number, rank: number): ComposedMix {
  const adapter = randomLoraAdapter(
    createRng(seed),
    targets.map((t) => ({ module: t.module, rank, inFeatures: t.in, outFeatures: t.out, scale: 0.05 })),
    { baseModel: "tiny-random-llama-fp16" },
  );
  const files = writePeftAdapter(adapter);
  return composeMix([{ adapter: loadPeftAdapter(files.config, files.safetensors), weight: 1 }]);
}

describe.skipIf(!present)("importOnnxExport: tiny-random-llama-fp16 (GenAI fp16 Llama export)", () => {
  const imported = useImportedExport(FIXTURE, "genai-llama");

  it("writes an fp16 Llama manifest: every q/k/v/o/gate/up/down MatMul is an unmerged target under its PEFT name", async () => {
    const manifest = JSON.parse(await fsp.readFile(path.join(imported.dir, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ architecture: "llama", dtype: "float16", vocabSize: V, numLayers: 2, hiddenSize: 16, numHeads: 1, numKvHeads: 1, headDim: 16, intermediateSize: 64, contextLength: 2048, tokenizer: { kind: "hf", bosId: 0, eosId: 1 } });
    expect(manifest.targets.map((t: { module: string }) => t.module)).toEqual(
      [0, 1].flatMap((i) => ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"].map((m) => `model.layers.${i}.${m}`)),
    );
    expect(manifest.targets.every((t: { mode: string }) => t.mode === "unmerged")).toBe(true);
    expect(manifest.targets[4]).toEqual({ module: "model.layers.0.mlp.gate_proj", in: 16, out: 64, mode: "unmerged", fanInFanOut: false });
    // Weights stay fp16 on disk (the fixture's 2.13 MB, plus alignment).
    expect((await fsp.stat(path.join(imported.dir, "weights.bin"))).size).toBeLessThan(2_200_000);
  });

  const tokens = [0, 5, 100, 2000, 7, 31999, 42, 8];
  for (const backend of ["node", "web"] as const) {
    for (const policy of ["keep", "upcast"] as const satisfies readonly Float16Policy[]) {
      describe(`on backend ${backend}, fp16 policy ${policy}`, () => {
        let model: BaseModel;
        beforeAll(async () => {
          model = await loadModel(imported.dir, { backend, threads: 1, float16: policy });
        });
        afterAll(async () => {
          await model?.dispose();
        });

        it("base logits equal ONNX Runtime running the original graph; cached decode in a mixed batch ≡ full recompute", async () => {
          const original = await originalLogits(backend, null, tokens);
          const [full] = await model.step([{ tokens, cache: null, mix: null }], { allLogits: true });
          expect(relErr(full.logits, original)).toBeLessThanOrEqual(policy === "keep" ? 1e-3 : FP16_TOL);
          for (const { position, error } of await cachedDecodeErrors(model, tokens, full.logits, V)) {
            expect(error, `position ${position}`).toBeLessThanOrEqual(policy === "keep" ? FP16_TOL : 1e-4);
          }
        });

        it("a PEFT adapter served unmerged ≡ the original graph with ΔW merged into its fp16 initializers; merged ≡ unmerged", async () => {
          const mix = peftMix(model.manifest.targets, 11, 4);
          const expected = await originalLogits(backend, mix, tokens);
          const base = await originalLogits(backend, null, tokens);
          expect(relErr(expected, base)).toBeGreaterThan(10 * FP16_TOL); // the adapter matters
          const [lora, other] = await model.step(
            [
              { tokens, cache: null, mix },
              { tokens: [4, 4], cache: null, mix: null },
            ],
            { allLogits: true },
          );
          expect(relErr(lora.logits, expected)).toBeLessThanOrEqual(FP16_TOL);
          expect(relErr(other.logits, await originalLogits(backend, null, [4, 4]))).toBeLessThanOrEqual(policy === "keep" ? 1e-3 : FP16_TOL);
          const merged = await model.createMerged(mix);
          const [m] = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
          expect(relErr(m.logits, expected)).toBeLessThanOrEqual(FP16_TOL);
          expect(relErr(m.logits, lora.logits)).toBeLessThanOrEqual(FP16_TOL);
          await merged.dispose();
        });
      });
    }
  }

  it("fp16 kept with a mix ≡ the same model up-cast to fp32 with the same mix (shared and per-row paths)", async () => {
    const keep = await loadModel(imported.dir, { backend: "node", threads: 1, float16: "keep" });
    const up = await loadModel(imported.dir, { backend: "node", threads: 1, float16: "upcast" });
    try {
      const a = peftMix(keep.manifest.targets, 21, 3);
      const b = peftMix(keep.manifest.targets.slice(0, 7), 22, 5);
      const rows = [
        { tokens: tokens.slice(0, 6), cache: null, mix: a },
        { tokens: tokens.slice(2, 7), cache: null, mix: b },
        { tokens: tokens.slice(1, 5), cache: null, mix: a },
      ];
      const k = await keep.step(rows, { allLogits: true });
      const u = await up.step(rows, { allLogits: true });
      for (let i = 0; i < rows.length; i++) expect(relErr(k[i].logits, u[i].logits), `row ${i}`).toBeLessThanOrEqual(FP16_TOL);
    } finally {
      await keep.dispose();
      await up.dispose();
    }
  });

  it("an fp32 export of the same model (the fixture's graph and data up-cast, as the model builder writes fp32) imports as fp32 and serves a PEFT adapter", async () => {
    const src = await fsp.mkdtemp(path.join(os.tmpdir(), "loraedge-genai-fp32-"));
    const out = await fsp.mkdtemp(path.join(os.tmpdir(), "loraedge-genai-fp32-model-"));
    try {
      for (const f of ["genai_config.json", "tokenizer.json", "tokenizer_config.json"]) await fsp.copyFile(path.join(FIXTURE, f), path.join(src, f));
      const graph = decodeModel(new Uint8Array(fs.readFileSync(path.join(FIXTURE, "model.onnx"))));
      const data = upcastFloat16(graph, new Uint8Array(fs.readFileSync(path.join(FIXTURE, "model.onnx.data"))), "model.onnx.data");
      await fsp.writeFile(path.join(src, "model.onnx"), encodeModel(graph));
      await fsp.writeFile(path.join(src, "model.onnx.data"), data);
      const manifest = await importOnnxExport(src, out);
      expect(manifest).toMatchObject({ dtype: "float32", architecture: "llama" });
      expect(manifest.targets.filter((t) => t.mode === "unmerged")).toHaveLength(14);
      const model = await loadModel(out, { backend: "node", threads: 1 });
      try {
        const mix = peftMix(model.manifest.targets, 11, 4);
        const [base, lora] = await model.step(
          [
            { tokens, cache: null, mix: null },
            { tokens, cache: null, mix },
          ],
          { allLogits: true },
        );
        expect(relErr(base.logits, await originalLogits("node", null, tokens))).toBeLessThanOrEqual(FP16_TOL);
        expect(relErr(lora.logits, await originalLogits("node", mix, tokens))).toBeLessThanOrEqual(FP16_TOL);
        const merged = await model.createMerged(mix);
        const [m] = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(m.logits, lora.logits)).toBeLessThanOrEqual(1e-4); // fp32: merged ≡ unmerged tightly
        await merged.dispose();
      } finally {
        await model.dispose();
      }
    } finally {
      await fsp.rm(src, { recursive: true, force: true });
      await fsp.rm(out, { recursive: true, force: true });
    }
  });

  it("its tokenizer.json round-trips text", async () => {
    const model = await loadModel(imported.dir, { backend: "node", threads: 1 });
    try {
      const text = "Hello world, this is a test.";
      expect(model.tokenizer.decode(model.tokenizer.encode(text))).toBe(text);
      expect(model.tokenizer.decode([])).toBe("");
    } finally {
      await model.dispose();
    }
  });
});
