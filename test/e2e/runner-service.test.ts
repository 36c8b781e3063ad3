// The runner process over real HTTP: adapter cache (eviction under a small budget, sha256
// mismatch, single-flight fetches, admin), overload with Retry-After, client disconnects,
// graceful shutdown, keep-alive comments of a waiting stream.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import type { Service } from "../../scripts/lib/stack.js";
import { startEdgeAdapterServer, type EdgeAdapterServer } from "../../gpu-runner/src/adapters/testing/edge-adapter-server.js";
import {
  complete,
  completeOk,
  maxAbsDiff,
  metricValue,
  mixOf,
  MODEL,
  referenceGreedy,
  promptIds,
  SECRET,
  serveAdapter,
  signedFetch,
  startTestRunner,
  streamEvents,
  type TestAdapter,
} from "./runner-harness.js";

const until = async (check: () => Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
};

describe("gpu-runner process: adapter cache", () => {
  let edge: EdgeAdapterServer;
  let small: Service;
  let adapters: TestAdapter[];

  beforeAll(async () => {
    edge = await startEdgeAdapterServer(SECRET);
    // Rank 16 on every module of the tiny model ≈ 0.19 MB of Float32 A/B each; budget holds two.
    adapters = [0, 1, 2, 3].map((i) => serveAdapter(edge, `cache/${i}`, 40 + i, 16));
    small = await startTestRunner({ RUNNER_ADAPTER_CACHE_MB: "0.4" }, edge.url);
  });
  afterAll(async () => {
    await small?.stop();
    await edge?.close();
  });

  it("stays correct while evicting under a small byte budget", async () => {
    const prompt = "evict";
    const order = [0, 1, 2, 0, 3, 1, 0];
    for (const i of order) {
      const ad = adapters[i]!;
      const out = await completeOk(small.url, { model: MODEL, prompt, max_tokens: 4, temperature: 0, logprobs: 0, adapters: mixOf([ad, 1]) });
      const ref = referenceGreedy(promptIds(prompt), [[ad, 1]], 4);
      expect(out.choices[0]!.logprobs!.token_ids).toEqual(ref.ids);
      expect(maxAbsDiff(out.choices[0]!.logprobs!.token_logprobs, ref.logprobs)).toBeLessThanOrEqual(1e-4);
    }
    const cached = await metricValue(small.url, "loraedge_runner_adapter_cache_bytes");
    expect(cached).toBeLessThanOrEqual(0.4 * 2 ** 20);
    expect(await metricValue(small.url, "loraedge_runner_adapter_evictions_total")).toBeGreaterThan(0);
    // Evicted adapters were fetched again.
    expect(edge.fetches.get("cache/0")).toBeGreaterThanOrEqual(2);
  });

  it("concurrent misses for one adapter cause one fetch", async () => {
    const fresh = serveAdapter(edge, "cache/fresh", 77, 8);
    edge.delayMs = 150;
    const outs = await Promise.all(
      Array.from({ length: 6 }, () => completeOk(small.url, { model: MODEL, prompt: "same", max_tokens: 2, temperature: 0, adapters: mixOf([fresh, 1]) })),
    );
    edge.delayMs = 0;
    expect(new Set(outs.map((o) => o.choices[0]!.text)).size).toBe(1);
    expect(edge.fetches.get("cache/fresh")).toBe(1);
  });

  it("a blob whose sha256 does not match fails the request and is not cached", async () => {
    const bad = serveAdapter(edge, "cache/corrupt", 88, 4);
    edge.corrupt.add(bad.id);
    const res = await complete(small.url, { model: MODEL, prompt: "x", max_tokens: 2, adapters: mixOf([bad, 1]) });
    expect(res.status).toBe(502);
    expect(res.json.error.type).toBe("adapter_integrity_error");
    expect(res.json.error.message).toContain(bad.sha256);
    const listing = (await (await signedFetch(small.url, RUNNER_PATHS.adapters)).json()) as any;
    expect(listing.data.some((e: any) => e.sha256 === bad.sha256)).toBe(false);
    // Served correctly again, it works (it was not cached as broken).
    edge.corrupt.delete(bad.id);
    expect((await complete(small.url, { model: MODEL, prompt: "x", max_tokens: 2, adapters: mixOf([bad, 1]) })).status).toBe(200);
    expect(edge.fetches.get(bad.id)).toBe(2);
  });

  it("admin: lists cached adapters and evicts one by id", async () => {
    const ad = adapters[3]!;
    await completeOk(small.url, { model: MODEL, prompt: "x", max_tokens: 1, adapters: mixOf([ad, 1]) });
    const listing = (await (await signedFetch(small.url, RUNNER_PATHS.adapters)).json()) as any;
    expect(listing.data.find((e: any) => e.sha256 === ad.sha256)?.ids).toContain(ad.id);
    const path = `${RUNNER_PATHS.adapters}/${encodeURIComponent(ad.id)}`;
    const evicted = await signedFetch(small.url, path, { method: "DELETE" });
    expect(evicted.status).toBe(200);
    expect(((await evicted.json()) as any).evicted).toEqual([ad.sha256]);
    expect((await signedFetch(small.url, path, { method: "DELETE" })).status).toBe(404);
  });

  it("an adapter that does not fit the model is refused with 422", async () => {
    const { randomLoraAdapter, createRng } = await import("#core/random/index");
    const { writePeftAdapter } = await import("#core/peft/index");
    const wrong = randomLoraAdapter(createRng(5), [{ module: "model.layers.0.self_attn.q_proj", rank: 4, inFeatures: 32, outFeatures: 64 }]);
    const files = writePeftAdapter(wrong);
    const sha256 = edge.put("cache/wrong-shape", { config: files.config, safetensors: files.safetensors });
    const res = await complete(small.url, { model: MODEL, prompt: "x", max_tokens: 1, adapters: [{ id: "cache/wrong-shape", sha256, weight: 1 }] });
    expect(res.status).toBe(422);
    expect(res.json.error.type).toBe("incompatible_adapter");
    expect(res.json.error.message).toMatch(/maps 32 → 64 features/);
  });
});

describe("gpu-runner process: limits, disconnects, shutdown", () => {
  let runner: Service;

  beforeAll(async () => {
    runner = await startTestRunner({ RUNNER_MAX_BATCH: "1", RUNNER_MAX_QUEUE: "1", RUNNER_DRAIN_MS: "20000", RUNNER_SSE_KEEPALIVE_MS: "50" });
  });
  afterAll(async () => {
    await runner?.stop();
  });

  it("overload → 429 with Retry-After; accepted requests still complete", async () => {
    const body = { model: MODEL, prompt: "load", max_tokens: 48, temperature: 0 };
    const results = await Promise.all(Array.from({ length: 6 }, () => complete(runner.url, body)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const r of refused) {
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(r.json.error.type).toBe("overloaded");
    }
    expect(await metricValue(runner.url, "loraedge_runner_rejected_total", { reason: "queue_full" })).toBe(refused.length);
  });

  it("a client disconnect mid-stream frees its batch row", async () => {
    const aborted = await metricValue(runner.url, "loraedge_runner_aborted_total");
    const controller = new AbortController();
    const res = await signedFetch(runner.url, RUNNER_PATHS.completions, {
      body: { model: MODEL, prompt: "long", max_tokens: 480, temperature: 0, stream: true },
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // first event arrived: the row is running
    expect(await metricValue(runner.url, "loraedge_runner_batch_rows")).toBe(1);
    controller.abort();
    expect(await until(async () => (await metricValue(runner.url, "loraedge_runner_batch_rows")) === 0)).toBe(true);
    expect(await metricValue(runner.url, "loraedge_runner_aborted_total")).toBe(aborted + 1);
    // The single row is free: a new request runs (with max_batch 1 it would otherwise wait for 480 tokens).
    const generated = await metricValue(runner.url, "loraedge_runner_completion_tokens_total");
    const next = await completeOk(runner.url, { model: MODEL, prompt: "next", max_tokens: 3, ignore_eos: true });
    expect(next.usage!.completion_tokens).toBe(3);
    expect((await metricValue(runner.url, "loraedge_runner_completion_tokens_total")) - generated).toBeLessThan(480);
  });

  it("a stream waiting for a batch row writes `: keep-alive` comments until its first token (the edge's idle timeout sees a live runner)", async () => {
    const long = await signedFetch(runner.url, RUNNER_PATHS.completions, {
      body: { model: MODEL, prompt: "busy", max_tokens: 480, temperature: 0, stream: true, ignore_eos: true },
    });
    const longReader = long.body!.getReader();
    await longReader.read(); // the only row is taken
    const queued = await signedFetch(runner.url, RUNNER_PATHS.completions, {
      body: { model: MODEL, prompt: "wait", max_tokens: 3, temperature: 0, stream: true, ignore_eos: true },
    });
    const text = await queued.text(); // runs once the long stream has finished
    await longReader.cancel();
    const firstData = text.indexOf("data:");
    expect(text.slice(0, firstData)).toMatch(/^(: keep-alive\n\n)+$/);
    const { chunks, done } = await streamEvents(new Response(text));
    expect(done).toBe(true);
    expect(chunks.at(-1).usage.completion_tokens).toBe(3);
  });

  it("SIGTERM: refuses new work, finishes the running stream, exits 0", async () => {
    const res = await signedFetch(runner.url, RUNNER_PATHS.completions, {
      // ignore_eos: the stream must still be running when SIGTERM arrives, whatever the weights.
      body: { model: MODEL, prompt: "drain", max_tokens: 200, temperature: 0, stream: true, ignore_eos: true },
    });
    const events = streamEvents(res);
    await until(async () => (await metricValue(runner.url, "loraedge_runner_batch_rows")) === 1);
    process.kill(-runner.process.pid!, "SIGTERM");
    expect(await until(async () => (await fetch(runner.url + RUNNER_PATHS.health).catch(() => null))?.status === 503, 5000)).toBe(true);
    const refused = await complete(runner.url, { model: MODEL, prompt: "late", max_tokens: 1 }).catch(() => null);
    if (refused) {
      expect(refused.status).toBe(503);
      expect(refused.headers.get("retry-after")).toBeTruthy();
    }
    const { chunks, done } = await events;
    expect(done).toBe(true);
    expect(chunks[chunks.length - 1].usage.completion_tokens).toBe(200);
    expect(await runner.exited).toBe(0);
  });
});

describe("gpu-runner process: merge on demand (auto policy)", () => {
  let edge: EdgeAdapterServer;
  let runner: Service;

  beforeAll(async () => {
    edge = await startEdgeAdapterServer(SECRET);
    // A long payback horizon: the policy's decision rests on measured timings, and with the shared
    // LoRA path a hot mix costs little unmerged; any measurable overhead must still trigger the build.
    runner = await startTestRunner({ RUNNER_MERGE_POLICY: "auto", RUNNER_MERGE_HORIZON_S: "86400" }, edge.url);
  });
  afterAll(async () => {
    await runner?.stop();
    await edge?.close();
  });

  it("a hot mix gets a merged session built in the background; its later requests run merged with the same output", async () => {
    const hot = serveAdapter(edge, "auto/hot", 500, 64);
    const body = { model: MODEL, prompt: "hot mix", max_tokens: 16, temperature: 0, logprobs: 0, adapters: mixOf([hot, 1]) };
    const before = await completeOk(runner.url, body);
    // Base traffic gives the policy its no-LoRA baseline; hot traffic gives demand.
    await Promise.all(Array.from({ length: 8 }, () => completeOk(runner.url, { ...body, adapters: [] })));
    let built = false;
    for (let wave = 0; wave < 10 && !built; wave++) {
      await Promise.all(Array.from({ length: 16 }, () => completeOk(runner.url, body)));
      built = await until(async () => (await metricValue(runner.url, "loraedge_runner_merged_builds_total")) >= 1, 300);
    }
    expect(built).toBe(true);
    const hits = await metricValue(runner.url, "loraedge_runner_merged_hits_total");
    const after = await completeOk(runner.url, body);
    expect(await metricValue(runner.url, "loraedge_runner_merged_hits_total")).toBe(hits + 1);
    expect(after.choices[0]!.logprobs!.token_ids).toEqual(before.choices[0]!.logprobs!.token_ids);
    expect(maxAbsDiff(after.choices[0]!.logprobs!.token_logprobs, before.choices[0]!.logprobs!.token_logprobs)).toBeLessThanOrEqual(1e-4);
    const text = await (await fetch(runner.url + RUNNER_PATHS.metrics)).text();
    // Per-session labels are opaque (#12: /metrics is unauthenticated and carries no tenant data).
    expect(text).toMatch(/loraedge_runner_merged_session_hits\{model="loraedge-tiny",mix="[0-9a-f]{12}"\} [1-9]\d*/);
    expect(text).toMatch(/loraedge_runner_merged_session_build_seconds\{model="loraedge-tiny",mix="[0-9a-f]{12}"\} [0-9.e-]+/);
    expect(text).not.toContain("auto/hot");
  });
});
