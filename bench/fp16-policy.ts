/**
 * fp16 models on the CPU EP: "keep" (the fp16 graph as stored, LoRA in fp32) vs "upcast" (graph and
 * weights converted to fp32 at load), side by side, rounds alternating, each load in a fresh process:
 *   npx tsx bench/fp16-policy.ts [--rounds 5] [--hidden 1024] [--heads 16] [--ff 4096] [--threads 1]
 * The model is ONNX Runtime GenAI's fp16 Llama export (../shared/fixtures/tiny-random-llama-fp16)
 * scaled up: the same graph, ops and names, with seeded random fp16 weights of the given sizes
 * (2 layers, vocabulary 32000; default ≈ 100M parameters). Reported per policy: load ms (import
 * directory → session), peak RSS of the process, decode ms/step at batch 1 and 8 (base and with a
 * rank-16 mix on every projection), prefill ms of 8 × 64 tokens. Not part of `npm run bench`.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { f32ToF16 } from "#core/dtype/index";
import { createRng } from "#core/random/index";
import { importOnnxExport } from "../gpu-runner/src/model-build/import-onnx-export.js";
import { loadModel } from "../gpu-runner/src/model/load-model.js";
import { randomMix } from "../gpu-runner/src/model/testing/random-mix.js";
import type { KvCache } from "../gpu-runner/src/model/types.js";
import { decodeModel, encodeModel, externalLocation, toNumber } from "../gpu-runner/src/onnx/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE = path.join(HERE, "..", "..", "shared", "fixtures", "tiny-random-llama-fp16");
const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    hidden: { type: "string", default: "1024" },
    heads: { type: "string", default: "16" },
    ff: { type: "string", default: "4096" },
    threads: { type: "string", default: "1" },
    child: { type: "string" },
    dir: { type: "string" },
  },
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The fixture's graph with every weight resized to (hidden, heads, ff) and filled with seeded fp16 values. */
async function scaledExport(out: string, hidden: number, heads: number, ff: number): Promise<void> {
  await fs.cp(FIXTURE, out, { recursive: true });
  for (const f of await fs.readdir(out)) await fs.chmod(path.join(out, f), 0o644);
  const model = decodeModel(new Uint8Array(await fs.readFile(path.join(FIXTURE, "model.onnx"))));
  const g = model.graph!;
  const hd = hidden / heads;
  const dimsOf = (name: string, dims: number[]): number[] => {
    if (name === "cos_cache" || name === "sin_cache") return [dims[0], hd / 2];
    if (/embed_tokens/.test(name)) return [dims[0], hidden];
    if (/lm_head/.test(name)) return [hidden, dims[1]];
    if (/gate_proj|up_proj/.test(name)) return [hidden, ff];
    if (/down_proj/.test(name)) return [ff, hidden];
    if (/_proj/.test(name)) return [hidden, hidden];
    return [hidden]; // norms
  };
  const rng = createRng(1);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of g.initializer!) {
    const loc = externalLocation(t);
    if (!loc) continue;
    const dims = dimsOf(t.name!, t.dims!.map(toNumber));
    const n = dims.reduce((a, b) => a * b, 1);
    const f = new Float32Array(n);
    if (t.name === "cos_cache" || t.name === "sin_cache") {
      for (let p = 0; p < dims[0]; p++) for (let i = 0; i < dims[1]; i++) f[p * dims[1] + i] = (t.name === "cos_cache" ? Math.cos : Math.sin)(p * Math.pow(10000, (-2 * i) / hd));
    } else if (dims.length === 1) f.fill(1);
    else for (let i = 0; i < n; i++) f[i] = (rng.nextFloat() * 2 - 1) / Math.sqrt(dims[0]);
    const bytes = new Uint8Array(f32ToF16(f).buffer);
    t.dims = dims;
    t.externalData = [
      { key: "location", value: "model.onnx.data" },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(bytes.length) },
    ];
    chunks.push(bytes);
    offset += bytes.length;
  }
  g.valueInfo = []; // shapes of the original sizes
  for (const n of g.node!) if (n.opType === "MultiHeadAttention") for (const a of n.attribute ?? []) {
    if (a.name === "num_heads") a.i = heads;
    if (a.name === "scale") a.f = 1 / Math.sqrt(hd);
  }
  for (const info of g.input!) if (/past_key_values/.test(info.name)) {
    const d = info.type!.tensorType!.shape!.dim!;
    d[1] = { dimValue: heads };
    d[3] = { dimValue: hd };
  }
  for (const info of g.output!) if (/present/.test(info.name)) {
    const d = info.type!.tensorType!.shape!.dim!;
    d[1] = { dimValue: heads };
    d[3] = { dimValue: hd };
  }
  await fs.writeFile(path.join(out, "model.onnx"), encodeModel(model));
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  await fs.writeFile(path.join(out, "model.onnx.data"), data);
  const genai = JSON.parse(await fs.readFile(path.join(out, "genai_config.json"), "utf8"));
  Object.assign(genai.model.decoder, { hidden_size: hidden, head_size: hd, num_attention_heads: heads, num_key_value_heads: heads });
  await fs.writeFile(path.join(out, "genai_config.json"), JSON.stringify(genai));
}

/** One policy in this (fresh) process: prints one JSON line of figures. */
async function child(policy: "keep" | "upcast", dir: string, threads: number): Promise<void> {
  const t0 = performance.now();
  const model = await loadModel(dir, { backend: "node", threads, float16: policy });
  const loadMs = performance.now() - t0;
  const rssAfterLoad = process.memoryUsage().rss;
  const decode = async (batch: number, withMix: boolean) => {
    const mix = withMix ? randomMix(model.manifest.targets, () => 16, 3, 0.02) : null;
    let out = await model.step(Array.from({ length: batch }, () => ({ tokens: Array.from({ length: 16 }, (_, i) => 10 + i), cache: null, mix })));
    const times: number[] = [];
    for (let s = 0; s < 20; s++) {
      const caches: KvCache[] = out.map((o) => o.cache);
      const t = performance.now();
      out = await model.step(caches.map((cache) => ({ tokens: [42], cache, mix })));
      times.push(performance.now() - t);
    }
    return median(times.slice(4));
  };
  const prefill = async () => {
    const times: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      await model.step(Array.from({ length: 8 }, (_, i) => ({ tokens: Array.from({ length: 64 }, (_, j) => 100 + i + j), cache: null, mix: null })));
      times.push(performance.now() - t);
    }
    return median(times);
  };
  const figures = {
    "load ms": loadMs,
    "RSS after load MB": rssAfterLoad / 1e6,
    "decode b1 ms": await decode(1, false),
    "decode b8 ms": await decode(8, false),
    "decode b8 + r16 mix ms": await decode(8, true),
    "prefill 8×64 ms": await prefill(),
    "peak RSS MB": process.resourceUsage().maxRSS / 1e3,
  };
  await model.dispose();
  console.log(JSON.stringify(figures));
}

if (values.child) {
  await child(values.child as "keep" | "upcast", values.dir!, Number(values.threads));
} else {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "loraedge-fp16-bench-"));
  try {
    const [hidden, heads, ff] = [Number(values.hidden), Number(values.heads), Number(values.ff)];
    await scaledExport(path.join(work, "export"), hidden, heads, ff);
    const manifest = await importOnnxExport(path.join(work, "export"), path.join(work, "model"));
    const rows: Record<string, Record<string, number[]>> = { keep: {}, upcast: {} };
    const rounds = Number(values.rounds);
    for (let r = 0; r < rounds; r++) {
      for (const policy of r % 2 ? ["upcast", "keep"] : ["keep", "upcast"]) {
        const line = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--child", policy, "--dir", path.join(work, "model"), "--threads", values.threads!], { encoding: "utf8" });
        for (const [k, v] of Object.entries(JSON.parse(line.trim().split("\n").pop()!) as Record<string, number>)) (rows[policy][k] ??= []).push(v);
      }
    }
    console.log(`fp16 policy on the CPU EP, ${values.threads} thread(s), ${rounds} rounds (fresh process per load), medians; model: the GenAI fp16 Llama export scaled to hidden ${hidden}, ${heads} heads, ff ${ff}, 2 layers, vocabulary 32000 (${(manifest.parameters / 1e6).toFixed(1)}M parameters)`);
    console.log(`| figure | keep (fp16) | upcast (fp32) | keep ÷ upcast |\n|---|---|---|---|`);
    for (const key of Object.keys(rows.keep)) {
      const k = median(rows.keep[key]);
      const u = median(rows.upcast[key]);
      console.log(`| ${key} | ${k.toFixed(1)} | ${u.toFixed(1)} | ${(k / u).toFixed(2)} |`);
    }
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
