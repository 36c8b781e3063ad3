/**
 * The model layer's shared suite, run against each backend (model.node.test.ts, model.web.test.ts):
 * the built tiny model against the plain reference forward, batching, KV cache, LoRA inputs and
 * merged sessions.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ComposedMix } from "#core/lora/types";
import { referenceForward } from "../reference/index.js";
import { buildModel } from "../model-build/build-model.js";
import type { LlamaCheckpoint } from "../model-build/checkpoint.js";
import { loadModel } from "./load-model.js";
import { decodeModel } from "../onnx/index.js";
import type { GraphSpec } from "./graph-spec.js";
import { loraInputNames } from "./onnx-model.js";
import { stripLoraInputs } from "./strip-lora.js";
import { planLoraPaths, SHARED_DECODE_RANK_RATIO } from "./lora-paths.js";
import { MODEL_PRESETS } from "../model-build/presets.js";
import { seededLlamaCheckpoint } from "../model-build/seeded-checkpoint.js";
import { randomMix, relErr } from "./testing/random-mix.js";
import type { BackendName, BaseModel, KvCache } from "./types.js";
import type { LoraVariantSessions } from "./lora-variants.js";

const TOL = 1e-4;

export function runModelTests({ backend }: { backend: BackendName }): void {
  describe(`loraedge-tiny on backend ${backend}`, () => {
    let dir: string;
    let model: BaseModel;
    let checkpoint: LlamaCheckpoint;
    let V: number;
    let mixA: ComposedMix;
    let mixB: ComposedMix;
    let mixC: ComposedMix;

    beforeAll(async () => {
      dir = await fs.mkdtemp(path.join(os.tmpdir(), "loraedge-tiny-"));
      await buildModel("loraedge-tiny", dir);
      model = await loadModel(dir, { backend, threads: 1 });
      const preset = MODEL_PRESETS["loraedge-tiny"];
      checkpoint = seededLlamaCheckpoint(preset.config, preset.seed);
      V = preset.config.vocabSize;
      const targets = model.manifest.targets;
      // Mixed ranks: A touches attention (q r4, v r8, o r2) and down_proj r16 in layer 1; B touches every module r3 / gate r12.
      mixA = randomMix(targets, (m) => (m.endsWith("q_proj") ? 4 : m.endsWith("v_proj") ? 8 : m.endsWith("o_proj") ? 2 : m === "model.layers.1.mlp.down_proj" ? 16 : 0), 11);
      mixB = randomMix(targets, (m) => (m.endsWith("gate_proj") ? 12 : 3), 22);
      // C: layer 0 only, r6 (k_proj r20): modules where C is the only mix have R or Rc from C alone.
      mixC = randomMix(targets, (m) => (m.startsWith("model.layers.0.") ? (m.endsWith("k_proj") ? 20 : 6) : 0), 33);
    });

    afterAll(async () => {
      await model?.dispose();
      if (dir) await fs.rm(dir, { recursive: true, force: true });
    });

    const prompt = (text: string) => [256, ...Array.from(new TextEncoder().encode(text))];

    it("loads with a validated manifest listing every projection", () => {
      expect(model.manifest.id).toBe("loraedge-tiny");
      expect(model.manifest.targets).toHaveLength(2 * 7);
      expect(model.manifest.targets.every((t) => t.mode === "unmerged")).toBe(true);
      expect(model.tokenizer.decode(model.tokenizer.encode("abc ü"))).toBe("abc ü");
      expect(model.weightBytes).toBe(0);
    });

    it("prefill of rows with different lengths and mixes of mixed ranks equals the reference (every position)", async () => {
      const rows = [
        { tokens: prompt("The quick brown fox"), mix: mixA },
        { tokens: prompt("Hi"), mix: null },
        { tokens: prompt("jumps over the lazy dog."), mix: mixB },
      ];
      const out = await model.step(rows.map((r) => ({ tokens: r.tokens, cache: null, mix: r.mix })), { allLogits: true });
      rows.forEach((r, i) => {
        expect(out[i].logits.length).toBe(r.tokens.length * V);
        expect(out[i].cache.length).toBe(r.tokens.length);
        expect(relErr(out[i].logits, referenceForward(checkpoint, r.tokens, r.mix))).toBeLessThanOrEqual(TOL);
      });
      // Without allLogits: the last position only.
      const last = await model.step(rows.map((r) => ({ tokens: r.tokens, cache: null, mix: r.mix })));
      rows.forEach((r, i) => {
        expect(last[i].logits.length).toBe(V);
        expect(relErr(last[i].logits, out[i].logits.slice((r.tokens.length - 1) * V))).toBeLessThanOrEqual(1e-5);
      });
      // The LoRA changes the output (the test can fail).
      expect(relErr(out[0].logits, referenceForward(checkpoint, rows[0].tokens, null))).toBeGreaterThan(1e-3);
    });

    it("step-by-step decode with the KV cache equals the reference and the full recompute", async () => {
      const tokens = prompt("decode me, please");
      const full = referenceForward(checkpoint, tokens, mixB);
      const onnxFull = (await model.step([{ tokens, cache: null, mix: mixB }], { allLogits: true }))[0].logits;
      // Prefill 5, then chunks of 1 while other rows (other lengths, other mixes) share each batch.
      let cache: KvCache | null = null;
      let other: KvCache | null = null;
      const first = await model.step([{ tokens: tokens.slice(0, 5), cache: null, mix: mixB }], { allLogits: true });
      expect(relErr(first[0].logits, full.slice(0, 5 * V))).toBeLessThanOrEqual(TOL);
      cache = first[0].cache;
      for (let i = 5; i < tokens.length; i++) {
        const out = await model.step([
          { tokens: i % 2 ? [65, 66, 67] : [68], cache: other, mix: i % 3 ? mixA : null },
          { tokens: [tokens[i]], cache, mix: mixB },
        ]);
        other = out[0].cache;
        cache = out[1].cache;
        expect(cache.length).toBe(i + 1);
        const want = full.slice(i * V, (i + 1) * V);
        expect(relErr(out[1].logits, want)).toBeLessThanOrEqual(TOL);
        expect(relErr(out[1].logits, onnxFull.slice(i * V, (i + 1) * V))).toBeLessThanOrEqual(TOL);
      }
      // bytes: the store's capacity (64-token blocks): 2 layers × K,V × 2 KV heads × 64 × 16 dims × 4 B.
      expect(cache.bytes).toBe(2 * 2 * 2 * 64 * 16 * 4);
    });

    it("a cache stepped twice (a fork) gives both continuations correctly", async () => {
      const tokens = prompt("fork");
      const [pre] = await model.step([{ tokens, cache: null, mix: null }]);
      const [a] = await model.step([{ tokens: [70, 71], cache: pre.cache, mix: null }], { allLogits: true });
      const [b] = await model.step([{ tokens: [80], cache: pre.cache, mix: null }]);
      const [a2] = await model.step([{ tokens: [72], cache: a.cache, mix: null }]);
      expect(relErr(a.logits, referenceForward(checkpoint, [...tokens, 70, 71], null).slice(tokens.length * V))).toBeLessThanOrEqual(TOL);
      expect(relErr(b.logits, referenceForward(checkpoint, [...tokens, 80], null).slice(tokens.length * V))).toBeLessThanOrEqual(TOL);
      expect(relErr(a2.logits, referenceForward(checkpoint, [...tokens, 70, 71, 72], null).slice((tokens.length + 2) * V))).toBeLessThanOrEqual(TOL);
    });

    it("a row's output does not depend on the other rows of the batch", async () => {
      const tokens = prompt("independent");
      const alone = await model.step([{ tokens, cache: null, mix: mixA }], { allLogits: true });
      const crowded = await model.step(
        [
          { tokens: prompt("a much longer neighbour row with another mix"), cache: null, mix: mixB },
          { tokens, cache: null, mix: mixA },
          { tokens: [1], cache: null, mix: null },
        ],
        { allLogits: true },
      );
      expect(relErr(crowded[1].logits, alone[0].logits)).toBeLessThanOrEqual(1e-5);
      // Continue both caches one token with different neighbours.
      const a = await model.step([{ tokens: [42], cache: alone[0].cache, mix: mixA }]);
      const b = await model.step([
        { tokens: [42], cache: crowded[1].cache, mix: mixA },
        { tokens: [7, 8], cache: crowded[0].cache, mix: null },
      ]);
      expect(relErr(b[0].logits, a[0].logits)).toBeLessThanOrEqual(1e-5);
    });

    // Rows sharing a mix object take the shared path (Ac/Bc/Mk), rows with their own mix the per-row
    // path (Aᵗ/Bᵗ) on prefill; a decode step goes all-shared under the rank bound (lora-paths.ts).
    const layouts: Record<string, () => (ComposedMix | null)[]> = {
      "several rows share one mix": () => [mixA, mixB, mixA, null, mixA],
      "all rows share one mix": () => [mixB, mixB, mixB],
      "all rows distinct": () => [mixA, mixB, mixC],
      "mixed: two shared mixes, a distinct one, a base row": () => [mixA, mixC, mixA, mixB, mixC, null],
    };
    const texts = ["The quick brown fox", "Hi", "jumps over the lazy dog.", "ok", "a somewhat longer row of text", "z"];
    for (const [name, layout] of Object.entries(layouts)) {
      it(`LoRA paths, ${name}: prefill and cached decode equal the reference, rows independent of neighbours`, async () => {
        const mixes = layout();
        const seqs = mixes.map((_, i) => prompt(texts[i]));
        let out = await model.step(
          seqs.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })),
          { allLogits: true },
        );
        seqs.forEach((tokens, i) => expect(relErr(out[i].logits, referenceForward(checkpoint, tokens, mixes[i])), `prefill row ${i}`).toBeLessThanOrEqual(TOL));
        // Two decode steps (every row 1 token; the second reuses the packed LoRA inputs).
        for (let step = 0; step < 2; step++) {
          const next = seqs.map((_, i) => 40 + ((i * 7 + step * 3) % 50));
          out = await model.step(seqs.map((_, i) => ({ tokens: [next[i]], cache: out[i].cache, mix: mixes[i] })));
          seqs.forEach((tokens, i) => {
            tokens.push(next[i]);
            expect(out[i].cache.length).toBe(tokens.length);
            expect(relErr(out[i].logits, referenceForward(checkpoint, tokens, mixes[i]).slice((tokens.length - 1) * V)), `decode ${step} row ${i}`).toBeLessThanOrEqual(TOL);
          });
        }
        // Row i alone (prefill: per-row path unless shared; decode: its own batch) gives the same logits.
        for (let i = 0; i < seqs.length; i++) {
          const tokens = seqs[i];
          const [pre] = await model.step([{ tokens: tokens.slice(0, -1), cache: null, mix: mixes[i] }]);
          const [alone] = await model.step([{ tokens: tokens.slice(-1), cache: pre.cache, mix: mixes[i] }]);
          expect(relErr(alone.logits, out[i].logits), `row ${i} alone`).toBeLessThanOrEqual(1e-5);
        }
        // Some mix actually changes the output (the test can fail).
        const withMix = mixes.findIndex((m) => m !== null);
        expect(relErr(out[withMix].logits, referenceForward(checkpoint, seqs[withMix], null).slice((seqs[withMix].length - 1) * V))).toBeGreaterThan(1e-3);
      });
    }

    it("LoRA paths, decode with both paths at once (repeated mix shared, distinct mixes per-row) equals the reference", async () => {
      // More distinct mixes than the decode bound allows, plus one mix on two rows.
      const small = Array.from({ length: SHARED_DECODE_RANK_RATIO + 1 }, (_, k) => randomMix(model.manifest.targets, (m) => (m.endsWith(k % 2 ? "v_proj" : "up_proj") ? 2 : 0), 50 + k));
      const dup = randomMix(model.manifest.targets, (m) => (m.endsWith("proj") && m.includes("layers.1.") ? 2 : 0), 49);
      const mixes = [dup, ...small, null, dup];
      expect(new Set(planLoraPaths(mixes, true))).toEqual(new Set([true, false]));
      const seqs = mixes.map((_, i) => prompt(texts[i % texts.length].slice(0, 3 + i)));
      const pre = await model.step(seqs.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })));
      const dec = await model.step(seqs.map((_, i) => ({ tokens: [90 + i], cache: pre[i].cache, mix: mixes[i] })));
      seqs.forEach((tokens, i) => {
        const full = referenceForward(checkpoint, [...tokens, 90 + i], mixes[i]);
        expect(relErr(pre[i].logits, full.slice((tokens.length - 1) * V, tokens.length * V)), `prefill row ${i}`).toBeLessThanOrEqual(TOL);
        expect(relErr(dec[i].logits, full.slice(tokens.length * V)), `decode row ${i}`).toBeLessThanOrEqual(TOL);
      });
    });

    it("per-row rank chunks (K < r): distinct mixes of ranks 4–12 joining and leaving mid-batch across decode steps equal the reference", async () => {
      const ranks = [4, 8, 12, 8, 4, 12, 8];
      const mixes = ranks.map((r, k) => randomMix(model.manifest.targets, (m) => (m.endsWith(k % 2 ? "q_proj" : "down_proj") || m.endsWith("v_proj") ? r : 0), 70 + k));
      expect(planLoraPaths(mixes, true).some(Boolean)).toBe(false); // Σ ranks > 3 × max: every row per-row
      type Live = { k: number; tokens: number[]; cache: KvCache };
      let live: Live[] = [];
      const join = async (ks: number[]) => {
        const seqs = ks.map((k) => prompt(texts[k % texts.length].slice(0, 2 + k)));
        const pre = await model.step(ks.map((k, i) => ({ tokens: seqs[i]!, cache: null, mix: mixes[k]! })));
        live.push(...ks.map((k, i) => ({ k, tokens: seqs[i]!, cache: pre[i]!.cache })));
      };
      await join([0, 1, 2, 3]);
      for (let step = 0; step < 4; step++) {
        if (step === 1) await join([4, 5]); // rows join
        if (step === 2) live = live.filter((r) => r.k !== 1 && r.k !== 4); // rows leave
        if (step === 3) await join([6]);
        const out = await model.step(live.map((r) => ({ tokens: [60 + step], cache: r.cache, mix: mixes[r.k]! })));
        live.forEach((r, i) => {
          r.tokens.push(60 + step);
          r.cache = out[i]!.cache;
          const want = referenceForward(checkpoint, r.tokens, mixes[r.k]!).slice((r.tokens.length - 1) * V);
          expect(relErr(out[i]!.logits, want), `step ${step} mix ${r.k}`).toBeLessThanOrEqual(TOL);
        });
      }
    });

    it("resident per-row chunks (lora-bank.ts): rows leave from the middle, rejoin in another order, and two decode steps in flight at once (the second packs afresh) all equal the reference", async () => {
      const mixes = [4, 4, 6, 4, 4, 6, 4].map((r, k) => randomMix(model.manifest.targets, (m) => (m.endsWith(k % 2 ? "k_proj" : "up_proj") || m.endsWith("o_proj") ? r : 0), 90 + k));
      const seqs = mixes.map((_, k) => prompt(texts[k % texts.length].slice(0, 3 + k)));
      const pre = await Promise.all(seqs.map(async (tokens, k) => (await model.step([{ tokens, cache: null, mix: mixes[k]! }]))[0]!));
      const decode = async (ks: number[], next: number, note: string) => {
        expect(planLoraPaths(ks.map((k) => mixes[k]!), true).some(Boolean), `${note}: every row per-row`).toBe(false);
        const out = await model.step(ks.map((k) => ({ tokens: [next], cache: pre[k]!.cache, mix: mixes[k]! })));
        ks.forEach((k, i) => expect(relErr(out[i]!.logits, referenceForward(checkpoint, [...seqs[k]!, next], mixes[k]!).slice(seqs[k]!.length * V)), `${note}: mix ${k}`).toBeLessThanOrEqual(TOL));
      };
      await decode([0, 1, 2, 3, 4, 5, 6], 61, "all");
      await decode([0, 2, 4, 5, 6], 62, "1 and 3 left");
      await decode([3, 0, 1, 2, 4, 5, 6], 63, "they rejoin, order changed");
      await Promise.all([decode([0, 1, 2, 4, 5], 64, "in flight together (first)"), decode([6, 5, 4, 3, 2], 65, "in flight together (second)")]);
    });

    it("a batch prefilled together decodes from the prefill bank without packing again (the banks swap); the next prefill and the joined decode equal the reference", async () => {
      const ranks = [4, 6, 4, 6, 4, 6]; // Σ > 3 × max on every decode step: per-row
      const mixes = ranks.map((r, k) => randomMix(model.manifest.targets, (m) => (m.endsWith(k % 2 ? "k_proj" : "gate_proj") || m.endsWith("o_proj") ? r : 0), 110 + k));
      const seqs = mixes.map((_, k) => prompt(texts[k % texts.length].slice(0, 2 + k)));
      const live: { k: number; tokens: number[]; cache: KvCache }[] = [];
      const check = (out: { logits: Float32Array }[], note: string) =>
        live.forEach((r, i) => expect(relErr(out[i]!.logits, referenceForward(checkpoint, r.tokens, mixes[r.k]!).slice((r.tokens.length - 1) * V)), `${note}: mix ${r.k}`).toBeLessThanOrEqual(TOL));
      const prefill = async (ks: number[]) => {
        expect(planLoraPaths(ks.map((k) => mixes[k]!), false).some(Boolean)).toBe(false); // distinct mixes: per-row
        const pre = await model.step(ks.map((k) => ({ tokens: seqs[k]!, cache: null, mix: mixes[k]! })));
        live.push(...ks.map((k, i) => ({ k, tokens: [...seqs[k]!], cache: pre[i]!.cache })));
      };
      const decode = async (next: number, note: string) => {
        expect(planLoraPaths(live.map((r) => mixes[r.k]!), true).some(Boolean), `${note}: every row per-row`).toBe(false);
        const packed = model.timings!.loraPackMs;
        const out = await model.step(live.map((r) => ({ tokens: [next], cache: r.cache, mix: mixes[r.k]! })));
        live.forEach((r, i) => {
          r.tokens.push(next);
          r.cache = out[i]!.cache;
        });
        check(out, note);
        return model.timings!.loraPackMs - packed;
      };
      await prefill([0, 1, 2, 3]);
      expect(await decode(61, "first decode of the prefilled rows"), "no packing: the prefill bank became the decode bank").toBe(0);
      expect(await decode(62, "same rows again")).toBe(0);
      await prefill([4, 5]); // packs into the bank the decode bank gave up
      expect(await decode(63, "joined")).toBeGreaterThan(0);
      live.splice(1, 1); // a row leaves from the middle
      await decode(64, "one left");
    });

    it("a one-token prefill step between decode steps (a prompt's last token, split off by the prefill budget) keeps off the running rows' bank: the next decode step writes only the joining row (bench case 9's full repacks)", async () => {
      const uses = (k: number) => (m: string) => (m.endsWith(["q_proj", "v_proj", "up_proj", "down_proj", "o_proj"][k % 5]!) ? 4 : 0);
      const mixes = [0, 1, 2, 3, 4].map((k) => randomMix(model.manifest.targets, uses(k), 130 + k)); // rank 4 everywhere: K stays 4
      const seqs = mixes.map((_, k) => prompt(texts[k % texts.length].slice(0, 4 + k)));
      // The floats one join writes: its rank-4 chunks on every module it touches.
      const joinFloats = (k: number) => model.manifest.targets.reduce((n, t) => n + uses(k)(t.module) * (t.in + t.out), 0);
      const live: { k: number; tokens: number[]; cache: KvCache }[] = [];
      const step = async (rows: { k: number; tokens: number[]; cache: KvCache | null }[]) => {
        const before = model.timings!.loraPackFloats;
        const out = await model.step(rows.map((r) => ({ tokens: r.tokens, cache: r.cache, mix: mixes[r.k]! })));
        return { out, floats: model.timings!.loraPackFloats - before };
      };
      const decode = async (next: number, note: string) => {
        expect(planLoraPaths(live.map((r) => mixes[r.k]!), true).some(Boolean), `${note}: every row per-row`).toBe(false);
        const { out, floats } = await step(live.map((r) => ({ k: r.k, tokens: [next], cache: r.cache })));
        live.forEach((r, i) => {
          r.tokens.push(next);
          r.cache = out[i]!.cache;
          expect(relErr(out[i]!.logits, referenceForward(checkpoint, r.tokens, mixes[r.k]!).slice((r.tokens.length - 1) * V)), `${note}: mix ${r.k}`).toBeLessThanOrEqual(TOL);
        });
        return floats;
      };
      const pre = await step([0, 1, 2, 3].map((k) => ({ k, tokens: seqs[k]!, cache: null })));
      live.push(...[0, 1, 2, 3].map((k, i) => ({ k, tokens: [...seqs[k]!], cache: pre.out[i]!.cache })));
      expect(await decode(61, "first decode of the prefilled rows"), "their chunks are resident").toBe(0);
      // Row 4 joins alone (its mix on the shared path): its prompt but the last token, a decode step, then the last token.
      const head = seqs[4]!.slice(0, -1);
      const first = await step([{ k: 4, tokens: head, cache: null }]);
      expect(await decode(62, "decode between the two prefill chunks")).toBe(0);
      const last = await step([{ k: 4, tokens: seqs[4]!.slice(-1), cache: first.out[0]!.cache }]);
      expect(relErr(last.out[0]!.logits, referenceForward(checkpoint, seqs[4]!, mixes[4]!).slice((seqs[4]!.length - 1) * V))).toBeLessThanOrEqual(TOL);
      live.push({ k: 4, tokens: [...seqs[4]!], cache: last.out[0]!.cache });
      expect(await decode(63, "the joined decode"), "only row 4's chunks are written, the running rows stay resident").toBe(joinFloats(4));
      expect(await decode(64, "steady")).toBe(0);
    });

    it("LoRA paths at R = 0 and Rc = 0: empty mixes, mixes on other modules, base rows, on prefill and decode", async () => {
      const empty: ComposedMix = { modules: new Map(), maxRank: 0 };
      const layer1 = randomMix(model.manifest.targets, (m) => (m === "model.layers.1.mlp.up_proj" ? 5 : 0), 44);
      const cases: { mixes: (ComposedMix | null)[]; note: string }[] = [
        { mixes: [empty, empty], note: "shared mix touching nothing: R = Rc = 0 everywhere" },
        { mixes: [empty, null, layer1], note: "one module with R > 0 (prefill) / Rc > 0 (decode), all others 0" },
        { mixes: [layer1, layer1, mixC], note: "Rc > 0 only on up_proj.1, R > 0 only in layer 0 (prefill)" },
        { mixes: [null], note: "base row alone" },
      ];
      for (const { mixes, note } of cases) {
        const seqs = mixes.map((_, i) => prompt(texts[i + 1]));
        const pre = await model.step(
          seqs.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })),
          { allLogits: true },
        );
        seqs.forEach((tokens, i) => expect(relErr(pre[i].logits, referenceForward(checkpoint, tokens, mixes[i])), `${note}: prefill row ${i}`).toBeLessThanOrEqual(TOL));
        const dec = await model.step(seqs.map((_, i) => ({ tokens: [77], cache: pre[i].cache, mix: mixes[i] })));
        seqs.forEach((tokens, i) => {
          const full = referenceForward(checkpoint, [...tokens, 77], mixes[i]);
          expect(relErr(dec[i].logits, full.slice(tokens.length * V)), `${note}: decode row ${i}`).toBeLessThanOrEqual(TOL);
        });
      }
    });

    it("base-only steps run the LoRA-free twin session: equal to the LoRA graph at R = 0, caches move freely between the two", async () => {
      // The built graph does strip: no LoRA input left, 7 × 2 projections lose their LoRA nodes.
      const graph = new Uint8Array(await fs.readFile(path.join(dir, "model.onnx")));
      const spec = JSON.parse(await fs.readFile(path.join(dir, "graph.json"), "utf8")) as GraphSpec;
      const plain = decodeModel(stripLoraInputs(graph, loraInputNames(spec))!).graph!;
      expect(plain.input!.filter((i) => i.name.includes("lora"))).toEqual([]);
      expect(plain.node!.length).toBeLessThan(decodeModel(graph).graph!.node!.length - 14 * 6);
      const loraOnly = await loadModel(dir, { backend, threads: 1, plainSession: false, loraVariants: "off" });
      try {
        const seqs = [prompt("plain rows"), prompt("and a longer second plain row")];
        const viaPlain = await model.step(seqs.map((tokens) => ({ tokens, cache: null, mix: null })), { allLogits: true });
        const viaLora = await loraOnly.step(seqs.map((tokens) => ({ tokens, cache: null, mix: null })), { allLogits: true });
        seqs.forEach((tokens, i) => {
          expect(relErr(viaPlain[i].logits, viaLora[i].logits), `row ${i}`).toBeLessThanOrEqual(1e-6);
          expect(relErr(viaPlain[i].logits, referenceForward(checkpoint, tokens, null))).toBeLessThanOrEqual(TOL);
        });
        // A base row's cache from a plain step continues in a LoRA step (a neighbour has a mix) and back.
        const mixed = await model.step([
          { tokens: [61], cache: viaPlain[0].cache, mix: null },
          { tokens: seqs[1], cache: null, mix: mixA },
        ]);
        const plainAgain = await model.step([{ tokens: [63], cache: mixed[0].cache, mix: null }]);
        expect(relErr(mixed[0].logits, referenceForward(checkpoint, [...seqs[0], 61], null).slice(seqs[0].length * V))).toBeLessThanOrEqual(TOL);
        expect(relErr(mixed[1].logits, referenceForward(checkpoint, seqs[1], mixA).slice((seqs[1].length - 1) * V))).toBeLessThanOrEqual(TOL);
        expect(relErr(plainAgain[0].logits, referenceForward(checkpoint, [...seqs[0], 61, 63], null).slice((seqs[0].length + 1) * V))).toBeLessThanOrEqual(TOL);
      } finally {
        await loraOnly.dispose();
      }
    });

    it("pruned LoRA variants (shared-only, per-row-only) equal the full LoRA graph on prefill and cached decode; a step with both paths keeps the full graph", async () => {
      const pruned = await loadModel(dir, { backend, threads: 1, loraVariants: "eager" });
      const full = await loadModel(dir, { backend, threads: 1, loraVariants: "off" });
      const used = () => ({ ...(pruned as unknown as { sessions: { variants: LoraVariantSessions } }).sessions.variants.used });
      try {
        const seqs = [prompt("one mix alone"), prompt("a second, longer row"), prompt("third")];
        const compare = async (rows: { tokens: number[]; cache: KvCache | null; cacheFull: KvCache | null; mix: ComposedMix | null; history: number[] }[]) => {
          const a = await pruned.step(rows.map((r) => ({ tokens: r.tokens, cache: r.cache, mix: r.mix })), { allLogits: true });
          const b = await full.step(rows.map((r) => ({ tokens: r.tokens, cache: r.cacheFull, mix: r.mix })), { allLogits: true });
          rows.forEach((r, i) => {
            expect(relErr(a[i].logits, b[i].logits), `row ${i}`).toBeLessThanOrEqual(1e-6);
            const ref = referenceForward(checkpoint, [...r.history, ...r.tokens], r.mix).slice(r.history.length * V);
            expect(relErr(a[i].logits, ref), `row ${i} vs reference`).toBeLessThanOrEqual(TOL);
          });
          return rows.map((r, i) => ({ ...r, cache: a[i].cache, cacheFull: b[i].cache, history: [...r.history, ...r.tokens] }));
        };
        const row = (tokens: number[], mix: ComposedMix | null) => ({ tokens, cache: null, cacheFull: null, mix, history: [] as number[] });
        // One mix alone (prefill): shared path only → shared-only variant.
        let before = used();
        const [alone] = await compare([row(seqs[0], mixA)]);
        expect(used()["shared-only"]).toBe(before["shared-only"] + 1);
        // Two distinct mixes and a base row (prefill): per-row path only → per-row-only variant.
        before = used();
        const distinct = await compare([row(seqs[1], mixB), row(seqs[2], mixC), row(seqs[0], null)]);
        expect(used()["per-row-only"]).toBe(before["per-row-only"] + 1);
        // Cached decode of all of them: every mix distinct → per-row path only (lora-paths.ts) → per-row-only variant.
        before = used();
        const decoded = await compare([{ ...alone, tokens: [70] }, ...distinct.map((r) => ({ ...r, tokens: [71] }))]);
        expect(used()["per-row-only"]).toBe(before["per-row-only"] + 1);
        // Cached decode with a repeated mix under the rank bound: all-shared decode → shared-only.
        const pair = await compare([row(seqs[2], mixC), row(seqs[1], mixC)]);
        before = used();
        await compare([{ ...pair[0], tokens: [76] }, { ...pair[1], tokens: [77] }, { ...decoded[0], tokens: [78] }]);
        expect(used()["shared-only"]).toBe(before["shared-only"] + 1);
        // Then a step with a repeated mix beside a distinct one (both paths) → full graph.
        before = used();
        await compare([{ ...decoded[0], tokens: seqs[2] }, row(seqs[1], mixA), { ...decoded[2], tokens: [73] }]);
        expect(used()).toEqual(before);
        expect(planLoraPaths([mixA, mixA, mixC], false)).toEqual([true, true, false]);
      } finally {
        await pruned.dispose();
        await full.dispose();
      }
    });

    it("numeric containment: a hostile mix (∞ / float32-overflowing factors) beside victims on the same step leaves every victim equal to its solo output", async () => {
      const hostileOf = (value: number, seed: number): ComposedMix => {
        const mix = randomMix(model.manifest.targets, (m) => (m.endsWith("q_proj") || m.endsWith("up_proj") ? 4 : 0), seed);
        for (const m of mix.modules.values()) m.at.fill(value, 0, 8); // a few factors overflow (or are ∞)
        return mix;
      };
      const victimShared = randomMix(model.manifest.targets, (m) => (m.endsWith("q_proj") || m.endsWith("down_proj") ? 3 : 0), 61);
      const victimOwn = randomMix(model.manifest.targets, (m) => (m.endsWith("up_proj") ? 5 : 0), 62);
      for (const value of [Infinity, 3e38, 1e30]) {
        const hostile = hostileOf(value, 60);
        // Hostile on two rows (would be the shared path), victims on the shared path, a per-row mix and the base.
        const mixes = [hostile, victimShared, victimOwn, hostile, victimShared, null];
        const seqs = mixes.map((_, i) => prompt(texts[i % texts.length]));
        const pre = await model.step(seqs.map((tokens, i) => ({ tokens, cache: null, mix: mixes[i] })));
        const dec = await model.step(seqs.map((_, i) => ({ tokens: [50 + i], cache: pre[i].cache, mix: mixes[i] })));
        for (const i of [1, 2, 4, 5]) {
          const full = referenceForward(checkpoint, [...seqs[i], 50 + i], mixes[i]);
          expect(pre[i].logits.every(Number.isFinite), `${value}: prefill row ${i} finite`).toBe(true);
          expect(dec[i].logits.every(Number.isFinite), `${value}: decode row ${i} finite`).toBe(true);
          expect(relErr(pre[i].logits, full.slice((seqs[i].length - 1) * V, seqs[i].length * V)), `${value}: prefill row ${i}`).toBeLessThanOrEqual(TOL);
          expect(relErr(dec[i].logits, full.slice(seqs[i].length * V)), `${value}: decode row ${i}`).toBeLessThanOrEqual(TOL);
        }
        // The hostile rows only hurt themselves (the test can fail: with ∞ their own logits are not finite).
        if (value === Infinity) expect(pre[0].logits.every(Number.isFinite)).toBe(false);
      }
    });

    it("LoRA inputs ≡ a merged session with W′ = W + ΔW", async () => {
      const tokens = prompt("merged or not");
      const unmerged = await model.step([{ tokens, cache: null, mix: mixB }], { allLogits: true });
      const merged = await model.createMerged(mixB);
      try {
        expect(merged.weightBytes).toBeGreaterThan(0);
        expect(merged.buildMs.delta).toBeGreaterThanOrEqual(0);
        const out = await merged.step([{ tokens, cache: null, mix: null }], { allLogits: true });
        expect(relErr(out[0].logits, unmerged[0].logits)).toBeLessThanOrEqual(TOL);
        expect(relErr(out[0].logits, referenceForward(checkpoint, tokens, mixB))).toBeLessThanOrEqual(TOL);
        // Decoding on the merged variant with its own cache.
        const next = await merged.step([{ tokens: [33], cache: out[0].cache, mix: null }]);
        const ref = referenceForward(checkpoint, [...tokens, 33], mixB);
        expect(relErr(next[0].logits, ref.slice(tokens.length * V))).toBeLessThanOrEqual(TOL);
        await expect(merged.step([{ tokens, cache: null, mix: mixA }])).rejects.toThrow(/mix = null/);
        await expect(merged.step([{ tokens: [1], cache: unmerged[0].cache, mix: null }])).rejects.toThrow(/different model/);
      } finally {
        await merged.dispose();
      }
      // The base model is unchanged by the merge.
      const again = await model.step([{ tokens, cache: null, mix: null }], { allLogits: true });
      expect(relErr(again[0].logits, referenceForward(checkpoint, tokens, null))).toBeLessThanOrEqual(TOL);
    });

    it("refuses bad rows with precise errors", async () => {
      await expect(model.step([{ tokens: [], cache: null, mix: null }])).rejects.toThrow(/non-empty/);
      await expect(model.step([{ tokens: [258], cache: null, mix: null }])).rejects.toThrow(/outside the vocabulary/);
      await expect(model.step([{ tokens: new Array(513).fill(1), cache: null, mix: null }])).rejects.toThrow(/context length/);
      const bad = randomMix([{ module: "model.layers.9.mlp.up_proj", in: 64, out: 176 }], () => 2, 1);
      await expect(model.step([{ tokens: [1], cache: null, mix: bad }])).rejects.toThrow(/not a target/);
      const wrongSize = randomMix([{ module: "model.layers.0.mlp.up_proj", in: 65, out: 176 }], () => 2, 1);
      await expect(model.step([{ tokens: [1], cache: null, mix: wrongSize }])).rejects.toThrow(/model expects 64→176/);
      expect(await model.step([])).toEqual([]);
    });
  });
}
