/**
 * fp16 models on the CPU: "keep" (the fp16 graph as stored, LoRA in fp32) vs "upcast" (graph and
 * weights converted to fp32 at load), side by side, rounds alternating:
 *   npx tsx bench/fp16-policy.ts [--rounds 5] [--fixture ../shared/fixtures/tiny-random-llama-fp16]
 * Reports load ms, RSS growth of a load, decode ms/step (batch 1 and 8, with and without a mix) on
 * the fixture, and one MatMul [8, d]·[d, d] fp16 vs fp32 at d = 2048 (what a real model's decode
 * is made of). Not part of `npm run bench` (no model of realistic size ships in fp16 here).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { f32ToF16 } from "#core/dtype/index";
import { float16, float32, loadBackend } from "../gpu-runner/src/backend/index.js";
import { importOnnxExport } from "../gpu-runner/src/model-build/import-onnx-export.js";
import { loadModel } from "../gpu-runner/src/model/load-model.js";
import { randomMix } from "../gpu-runner/src/model/testing/random-mix.js";
import type { BaseModel, KvCache } from "../gpu-runner/src/model/types.js";
import { DataType, GraphBuilder } from "../gpu-runner/src/onnx/index.js";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, fixture: { type: "string", default: "../shared/fixtures/tiny-random-llama-fp16" } } });
const rounds = Number(values.rounds);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function decodeMs(model: BaseModel, batch: number, withMix: boolean): Promise<number> {
  const mix = withMix ? randomMix(model.manifest.targets, () => 8, 3, 0.05) : null;
  const prompt = Array.from({ length: 16 }, (_, i) => 10 + i);
  let out = await model.step(Array.from({ length: batch }, () => ({ tokens: prompt, cache: null, mix })));
  const times: number[] = [];
  for (let s = 0; s < 24; s++) {
    const caches: KvCache[] = out.map((o) => o.cache);
    const t0 = performance.now();
    out = await model.step(caches.map((cache) => ({ tokens: [42], cache, mix })));
    times.push(performance.now() - t0);
  }
  return median(times.slice(4));
}

async function matmulMs(dtype: "float16" | "float32", d: number): Promise<number> {
  const g = new GraphBuilder();
  const T = dtype === "float16" ? DataType.FLOAT16 : DataType.FLOAT;
  const x = g.input("x", T, [8, d]);
  const w = g.input("w", T, [d, d]);
  g.node("MatMul", [x, w], {}, { output: "y" });
  g.output("y", T, [8, d]);
  const backend = await loadBackend("node");
  const session = await backend.createSession(g.encode("mm"), { threads: 1 });
  const xs = Float32Array.from({ length: 8 * d }, (_, i) => Math.sin(i));
  const ws = Float32Array.from({ length: d * d }, (_, i) => Math.cos(i) / d);
  const feeds = dtype === "float16" ? { x: float16(f32ToF16(xs), [8, d]), w: float16(f32ToF16(ws), [d, d]) } : { x: float32(xs, [8, d]), w: float32(ws, [d, d]) };
  const times: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  await session.release();
  return median(times.slice(5));
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loraedge-fp16-bench-"));
try {
  await importOnnxExport(values.fixture!, dir);
  const rows: Record<string, Record<string, number[]>> = { keep: {}, upcast: {} };
  const add = (policy: string, key: string, v: number) => ((rows[policy][key] ??= []).push(v));
  for (let r = 0; r < rounds; r++) {
    for (const policy of (r % 2 ? ["upcast", "keep"] : ["keep", "upcast"]) as ("keep" | "upcast")[]) {
      global.gc?.();
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const model = await loadModel(dir, { backend: "node", threads: 1, float16: policy });
      add(policy, "load ms", performance.now() - t0);
      add(policy, "load RSS MB", (process.memoryUsage().rss - rss0) / 1e6);
      add(policy, "decode b1 ms", await decodeMs(model, 1, false));
      add(policy, "decode b8 ms", await decodeMs(model, 8, false));
      add(policy, "decode b8 + mix ms", await decodeMs(model, 8, true));
      await model.dispose();
    }
    for (const dtype of (r % 2 ? ["float32", "float16"] : ["float16", "float32"]) as ("float16" | "float32")[]) add(dtype === "float16" ? "keep" : "upcast", "MatMul [8,2048]·[2048,2048] ms", await matmulMs(dtype, 2048));
  }
  console.log(`fp16 policy on the CPU EP (1 thread), ${rounds} rounds, medians (keep = fp16 graph; upcast = fp32 at load):`);
  console.log(`| figure | keep | upcast | keep ÷ upcast |\n|---|---|---|---|`);
  for (const key of Object.keys(rows.keep)) {
    const k = median(rows.keep[key]);
    const u = median(rows.upcast[key]);
    console.log(`| ${key} | ${k.toFixed(2)} | ${u.toFixed(2)} | ${(k / u).toFixed(2)} |`);
  }
} finally {
  await fs.rm(dir, { recursive: true, force: true });
}
