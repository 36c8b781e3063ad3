// Merge-only targets through the runner process: the third-party GPT-2 export (weights of
// attn.c_attn sit inside a fused com.microsoft Attention op) imported by the model layer.
// A mix touching c_attn must be served from a merged session even with RUNNER_MERGE_POLICY=never.
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeMix } from "#core/compose/index";
import type { LoraAdapter } from "#core/lora/types";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import { repoRoot, startRunner, type Service } from "../../scripts/lib/stack.js";
import { startEdgeAdapterServer, type EdgeAdapterServer } from "../../gpu-runner/src/adapters/testing/edge-adapter-server.js";
import { logSoftmax } from "../../gpu-runner/src/engine/sampling.js";
import { importOnnxExport } from "../../gpu-runner/src/model-build/import-onnx-export.js";
import { loadModel } from "../../gpu-runner/src/model/load-model.js";
import { completeOk, maxAbsDiff, metricValue, SECRET, signedFetch } from "./runner-harness.js";

const FIXTURE = path.join(repoRoot, "..", "shared", "fixtures", "tiny-random-gpt2");
const present = fs.existsSync(path.join(FIXTURE, "past.onnx"));
if (!present) console.warn(`skipping merge-only runner tests: ${FIXTURE} is absent`);

describe.skipIf(!present)("gpu-runner process: merge-only targets (GPT-2 export)", () => {
  const MODEL = "tiny-random-gpt2";
  let dir: string;
  let edge: EdgeAdapterServer;
  let runner: Service;
  let targets: { module: string; in: number; out: number; mode: string }[];
  const served = new Map<string, { adapter: LoraAdapter; sha256: string }>();

  const serve = (id: string, seed: number, pick: (module: string) => boolean) => {
    const specs = targets
      .filter((t) => pick(t.module))
      .map((t) => ({ module: t.module, rank: 4, inFeatures: t.in, outFeatures: t.out, scale: 0.5 }));
    const adapter = randomLoraAdapter(createRng(seed), specs, { fanInFanOut: true });
    const files = writePeftAdapter(adapter);
    const sha256 = edge.put(id, { config: files.config, safetensors: files.safetensors });
    served.set(id, { adapter, sha256 });
    return [{ id, sha256, weight: 1 }];
  };

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "loraedge-runner-gpt2-"));
    const modelDir = path.join(dir, MODEL);
    await importOnnxExport(FIXTURE, modelDir, { id: MODEL });
    edge = await startEdgeAdapterServer(SECRET);
    runner = await startRunner({ secret: SECRET, edgeUrl: edge.url, models: modelDir, env: { RUNNER_MERGE_POLICY: "never", RUNNER_THREADS: "1" } });
    const models = (await (await signedFetch(runner.url, RUNNER_PATHS.models)).json()) as any;
    targets = models.data[0].manifest.targets;
  });

  afterAll(async () => {
    await runner?.stop();
    await edge?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  it("lists c_attn as merge-only", () => {
    expect(targets.filter((t) => t.mode === "merge-only").map((t) => t.module)).toContain("transformer.h.0.attn.c_attn");
  });

  it("a mix on unmerged targets runs unmerged; a mix touching c_attn is forced onto one merged session", async () => {
    const prompt = [11, 250, 42, 7, 901, 3];
    const body = { model: MODEL, prompt, max_tokens: 0, echo: true, logprobs: 0 };
    const base = await completeOk(runner.url, body);
    const plain = await completeOk(runner.url, { ...body, adapters: serve("gpt2/proj", 1, (m) => m.endsWith("c_proj") || m.endsWith("c_fc")) });
    expect(await metricValue(runner.url, "loraedge_runner_merged_builds_total")).toBe(0);
    expect(maxAbsDiff(plain.choices[0]!.logprobs!.token_logprobs, base.choices[0]!.logprobs!.token_logprobs)).toBeGreaterThan(1e-4);

    const attn = serve("gpt2/attn", 2, (m) => m.endsWith("attn.c_attn") || m === "transformer.h.1.mlp.c_proj");
    const first = await completeOk(runner.url, { ...body, adapters: attn });
    const second = await completeOk(runner.url, { ...body, adapters: attn });
    expect(await metricValue(runner.url, "loraedge_runner_merged_builds_total")).toBe(1);
    expect(await metricValue(runner.url, "loraedge_runner_merged_hits_total")).toBe(2);
    expect(second.choices[0]!.logprobs!.token_logprobs).toEqual(first.choices[0]!.logprobs!.token_logprobs);
    expect(maxAbsDiff(first.choices[0]!.logprobs!.token_logprobs, base.choices[0]!.logprobs!.token_logprobs)).toBeGreaterThan(1e-4);

    // Same numbers as the model layer's merged session built in this process from the written adapter.
    const model = await loadModel(path.join(dir, MODEL), { backend: "node", threads: 1 });
    try {
      const merged = await model.createMerged(composeMix([{ adapter: served.get("gpt2/attn")!.adapter, weight: 1 }]));
      const [row] = await merged.step([{ tokens: prompt, cache: null, mix: null }], { allLogits: true });
      const V = model.manifest.vocabSize;
      const expected = prompt.map((id, i) => (i === 0 ? null : logSoftmax(row!.logits.subarray((i - 1) * V, i * V))[id]!));
      expect(maxAbsDiff(first.choices[0]!.logprobs!.token_logprobs, expected)).toBeLessThanOrEqual(1e-4);
      await merged.dispose();
    } finally {
      await model.dispose();
    }
  });
});
