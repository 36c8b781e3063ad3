/**
 * The third-party GPT-2 GenAI export (../shared/fixtures/tiny-random-gpt2), imported with LoRA
 * inputs. Expected values come from the ORIGINAL fixture graph whose weights the test patches
 * itself (W + Aᵗ·Bᵗ in plain loops), so the importer and the merger are checked independently.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ComposedMix } from "#core/lora/types";
import { expectFloat32, float32, int32, loadBackend, type BackendName } from "../backend/index.js";
import { decodeModel, encodeModel, toNumber } from "../onnx/index.js";
import { importOnnxExport } from "./import-onnx-export.js";
import { loadModel } from "../model/load-model.js";
import { randomMix, relErr } from "../model/testing/random-mix.js";
import { useImportedExport } from "./testing/temp-dirs.js";
import { cachedDecodeErrors } from "../model/testing/cached-decode.js";
import type { BaseModel } from "../model/types.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const FIXTURE = path.join(REPO, "..", "shared", "fixtures", "tiny-random-gpt2");
const present = fs.existsSync(path.join(FIXTURE, "past.onnx"));
if (!present) console.warn(`skipping GPT-2 fixture tests: ${FIXTURE} is absent`);

/** Logits [n, vocab] of the original export with each mix module's weight replaced by W + at·bt (plain loops). */
async function originalWithMergedWeights(backendName: BackendName, mix: ComposedMix | null, tokens: number[]): Promise<Float32Array> {
  const model = decodeModel(new Uint8Array(fs.readFileSync(path.join(FIXTURE, "past.onnx"))));
  for (const [name, m] of mix?.modules ?? []) {
    const init = model.graph!.initializer!.find((t) => t.name === `${name}.weight`)!;
    const [I, O] = init.dims!.map(toNumber);
    const w = new Float32Array(init.rawData!.slice().buffer); // [in, out] (Conv1D)
    for (let x = 0; x < I; x++)
      for (let y = 0; y < O; y++) {
        let acc = 0;
        for (let c = 0; c < m.rank; c++) acc += m.at[x * m.rank + c] * m.bt[c * O + y];
        w[x * O + y] += acc;
      }
    init.rawData = new Uint8Array(w.buffer);
  }
  const backend = await loadBackend(backendName);
  const session = await backend.createSession(encodeModel(model));
  const n = tokens.length;
  const feeds = {
    input_ids: int32(Int32Array.from(tokens), [1, n]),
    position_ids: int32(Int32Array.from(tokens, (_, i) => i), [1, n]),
    attention_mask: int32(new Int32Array(n).fill(1), [1, n]),
    ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`past_${i}`, float32(new Float32Array(0), [2, 1, 4, 0, 8])])),
  };
  const out = await session.run(feeds, ["logits"]);
  await session.release();
  return expectFloat32(out.logits, "logits").data;
}

describe.skipIf(!present)("importOnnxExport: tiny-random-gpt2 (GenAI export)", () => {
  const imported = useImportedExport(FIXTURE, "gpt2");

  it("writes a manifest with LoRA targets on the MatMuls and c_attn as merge-only", async () => {
    const manifest = JSON.parse(await fsp.readFile(path.join(imported.dir, "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ architecture: "gpt2", vocabSize: 1000, numLayers: 5, hiddenSize: 32, intermediateSize: 128, tokenizer: { kind: "hf", bosId: 98, eosId: 98 } });
    expect(manifest.targets).toHaveLength(20);
    expect(manifest.targets.filter((t: { mode: string }) => t.mode === "merge-only").map((t: { module: string }) => t.module)).toEqual([0, 1, 2, 3, 4].map((i) => `transformer.h.${i}.attn.c_attn`));
    expect(manifest.targets.find((t: { module: string }) => t.module === "transformer.h.3.mlp.c_proj")).toEqual({ module: "transformer.h.3.mlp.c_proj", in: 128, out: 32, mode: "unmerged", fanInFanOut: true });
  });

  for (const backend of ["node", "web"] as const) {
    describe(`on backend ${backend}`, () => {
      let model: BaseModel;
      beforeAll(async () => {
        model = await loadModel(imported.dir, { backend, threads: 1 });
      });
      afterAll(async () => {
        await model?.dispose();
      });
      const tokens = [98, 5, 17, 300, 999, 42, 7, 8, 9];
      const V = 1000;

      it("base model equals the original export; cached decode in mixed batches equals full recompute", async () => {
        const original = await originalWithMergedWeights(backend, null, tokens);
        const [full] = await model.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(full.logits, original)).toBeLessThanOrEqual(1e-5);
        for (const { position, error } of await cachedDecodeErrors(model, tokens, full.logits, V)) {
          expect(error, `position ${position}`).toBeLessThanOrEqual(1e-4);
        }
      });

      it("LoRA inputs on its MatMuls ≡ merging the same ΔW into the original weights (and ≡ createMerged)", async () => {
        const unmerged = model.manifest.targets.filter((t) => t.mode === "unmerged");
        const mix = randomMix(unmerged, (m) => (m.includes("c_fc") ? 6 : 3), 5, 0.4);
        const expected = await originalWithMergedWeights(backend, mix, tokens);
        const [lora, other] = await model.step(
          [
            { tokens, cache: null, mix },
            { tokens: [4, 4], cache: null, mix: null },
          ],
          { allLogits: true },
        );
        expect(relErr(lora.logits, expected)).toBeLessThanOrEqual(1e-4);
        const base = await originalWithMergedWeights(backend, null, [4, 4]);
        expect(relErr(other.logits, base)).toBeLessThanOrEqual(1e-5);
        const merged = await model.createMerged(mix);
        const [m] = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(m.logits, expected)).toBeLessThanOrEqual(1e-4);
        await merged.dispose();
      });

      it("shared and per-row LoRA paths in one batch (prefill and cached decode) ≡ merging each row's ΔW", async () => {
        const unmerged = model.manifest.targets.filter((t) => t.mode === "unmerged");
        const shared = randomMix(unmerged, (m) => (m.includes("c_fc") ? 6 : 3), 5, 0.4);
        const own = randomMix(unmerged, (m) => (m.includes("h.2.") ? 0 : 4), 6, 0.4);
        const mixes = [shared, own, shared, null];
        const seqs = [tokens.slice(0, 6), tokens.slice(2, 5), tokens.slice(1, 8), tokens.slice(0, 2)];
        // Prefill: rows 0 and 2 share (Ac/Bc/Mk), row 1 per-row (Aᵗ/Bᵗ); decode: all shared.
        const pre = await model.step(
          seqs.map((s, i) => ({ tokens: s, cache: null, mix: mixes[i] })),
          { allLogits: true },
        );
        const dec = await model.step(seqs.map((_, i) => ({ tokens: [11 + i], cache: pre[i].cache, mix: mixes[i] })));
        for (let i = 0; i < seqs.length; i++) {
          const full = await originalWithMergedWeights(backend, mixes[i], [...seqs[i], 11 + i]);
          expect(relErr(pre[i].logits, full.slice(0, seqs[i].length * V)), `prefill row ${i}`).toBeLessThanOrEqual(1e-4);
          expect(relErr(dec[i].logits, full.slice(seqs[i].length * V)), `decode row ${i}`).toBeLessThanOrEqual(1e-4);
        }
      });

      it("merge-only c_attn: a merged session changes the output exactly as merging predicts; LoRA inputs refuse it", async () => {
        const attn = model.manifest.targets.filter((t) => t.mode === "merge-only" && /h\.[13]\./.test(t.module));
        const mix = randomMix(attn, () => 4, 9, 0.5);
        const expected = await originalWithMergedWeights(backend, mix, tokens);
        const base = await originalWithMergedWeights(backend, null, tokens);
        expect(relErr(expected, base)).toBeGreaterThan(1e-3);
        const merged = await model.createMerged(mix);
        const [m] = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(m.logits, expected)).toBeLessThanOrEqual(1e-4);
        await merged.dispose();
        await expect(model.step([{ tokens, cache: null, mix }])).rejects.toThrow(/merge-only/);
      });

      it("its tokenizer.json round-trips text", () => {
        const text = "Hello world, ünïcode 😀 test\nnew line";
        const ids = model.tokenizer.encode(text);
        expect(ids.slice(0, 3)).toEqual([15496, 995, 11]);
        expect(model.tokenizer.decode(ids)).toBe(text);
      });
    });
  }
});
