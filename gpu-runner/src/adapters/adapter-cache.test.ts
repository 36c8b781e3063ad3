import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { factorValues, HalfFactor } from "#core/lora/factor";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { EngineError } from "../engine/errors.js";
import { AdapterCache, adapterBytes } from "./adapter-cache.js";
import { parseAdapter } from "./parse-adapter.js";
import { EdgeAdapterSource } from "./edge-source.js";
import { startEdgeAdapterServer, type EdgeAdapterServer } from "./testing/edge-adapter-server.js";

const SECRET = "adapter-cache-test-secret";

/** A real PEFT adapter (safetensors + config) of the given rank over two modules of width 64. */
function peftFiles(seed: number, rank: number) {
  const adapter = randomLoraAdapter(createRng(seed), [
    { module: "model.layers.0.self_attn.q_proj", rank, inFeatures: 64, outFeatures: 64, scale: 0.5 },
    { module: "model.layers.0.mlp.down_proj", rank, inFeatures: 176, outFeatures: 64, scale: 0.5 },
  ]);
  const files = writePeftAdapter(adapter);
  return { adapter, config: files.config, safetensors: files.safetensors };
}

describe("AdapterCache over signed HTTP", () => {
  let edge: EdgeAdapterServer;
  const shas: Record<string, string> = {};
  const bytesOf: Record<string, number> = {};

  beforeAll(async () => {
    edge = await startEdgeAdapterServer(SECRET);
    for (const [i, id] of ["a", "b", "c", "d"].entries()) {
      const f = peftFiles(100 + i, 8);
      shas[id] = edge.put(id, f);
      bytesOf[id] = f.safetensors.length; // the cached adapter's tensors are views of the received blob: it is what they keep alive
    }
  });
  afterAll(() => edge.close());

  const newCache = (budgetBytes: number, secret = SECRET) =>
    new AdapterCache(new EdgeAdapterSource({ baseUrl: edge.url, secret }), {
      budgetBytes,
      parse: (cfg, bytes) => loadPeftAdapter(cfg, bytes),
    });

  it("fetches, verifies and parses an adapter equal to the one written", async () => {
    const cache = newCache(1 << 30);
    const original = peftFiles(100, 8).adapter;
    const lease = await cache.acquire("a", shas.a!);
    const q = lease.adapter.modules.get("model.layers.0.self_attn.q_proj")!;
    const q0 = original.modules.get("model.layers.0.self_attn.q_proj")!;
    expect(q.rank).toBe(8);
    expect(q.scale * factorValues(q.b)[5]!).toBeCloseTo(q0.scale * q0.b[5]!, 6);
    expect(cache.stats()).toMatchObject({ entries: 1, missesTotal: 1, fetchesTotal: 1, bytes: bytesOf.a });
    lease.release();
    (await cache.acquire("a", shas.a!)).release();
    expect(cache.stats()).toMatchObject({ hitsTotal: 1, fetchesTotal: 1 });
  });

  it("the same blob under another id with another adapter_config.json is parsed with that config", async () => {
    const cache = newCache(1 << 30);
    const f = peftFiles(100, 8); // a's bytes; its config says lora_alpha 4 (scale 0.5)
    expect(edge.put("a-loud", { config: { ...f.config, lora_alpha: (f.config.lora_alpha as number) * 2 }, safetensors: f.safetensors })).toBe(shas.a);
    const quiet = await cache.acquire("a", shas.a!);
    const loud = await cache.acquire("a-loud", shas.a!);
    const module = "model.layers.0.self_attn.q_proj";
    expect(quiet.adapter.modules.get(module)!.scale).toBe(0.5);
    expect(loud.adapter.modules.get(module)!.scale).toBe(1);
    quiet.release();
    loud.release();
  });

  it("concurrent misses for one adapter cause one fetch", async () => {
    const cache = newCache(1 << 30);
    const before = edge.fetches.get("b") ?? 0;
    edge.delayMs = 50;
    const leases = await Promise.all(Array.from({ length: 8 }, () => cache.acquire("b", shas.b!)));
    edge.delayMs = 0;
    expect((edge.fetches.get("b") ?? 0) - before).toBe(1);
    expect(new Set(leases.map((l) => l.adapter)).size).toBe(1);
    leases.forEach((l) => l.release());
  });

  it("a blob whose sha256 does not match fails every waiter and is not cached", async () => {
    const cache = newCache(1 << 30);
    edge.corrupt.add("c");
    const attempts = await Promise.allSettled([cache.acquire("c", shas.c!), cache.acquire("c", shas.c!)]);
    for (const a of attempts) {
      expect(a.status).toBe("rejected");
      const e = (a as PromiseRejectedResult).reason as EngineError;
      expect(e.type).toBe("adapter_integrity_error");
      expect(e.message).toMatch(/sha256/);
    }
    expect(cache.has(shas.c!)).toBe(false);
    expect(cache.stats().fetchFailuresTotal).toBe(1);
    edge.corrupt.delete("c");
    const ok = await cache.acquire("c", shas.c!);
    expect(cache.has(shas.c!)).toBe(true);
    ok.release();
  });

  it("a wrong expected sha (request and edge disagree) is refused too", async () => {
    const cache = newCache(1 << 30);
    await expect(cache.acquire("a", shas.b!)).rejects.toMatchObject({ type: "adapter_integrity_error" });
    expect(cache.stats().entries).toBe(0);
  });

  it("evicts least recently used under a byte budget, never a pinned adapter", async () => {
    const cache = newCache(bytesOf.a! * 2 + 10);
    const a = await cache.acquire("a", shas.a!);
    (await cache.acquire("b", shas.b!)).release();
    // a is pinned: c must evict b (LRU among unpinned), not a.
    const c = await cache.acquire("c", shas.c!);
    expect(cache.has(shas.a!)).toBe(true);
    expect(cache.has(shas.b!)).toBe(false);
    expect(cache.has(shas.c!)).toBe(true);
    expect(cache.bytes()).toBeLessThanOrEqual(bytesOf.a! * 2 + 10);
    // Over budget while everything is pinned: allowed, shrinks on release.
    const d = await cache.acquire("d", shas.d!);
    expect(cache.stats().entries).toBe(3);
    a.release();
    c.release();
    d.release();
    expect(cache.bytes()).toBeLessThanOrEqual(bytesOf.a! * 2 + 10);
    expect(cache.has(shas.d!)).toBe(true);
    expect(cache.stats().evictionsTotal).toBe(2);
  });

  it("F16 adapters are cached as their halves (parseAdapter): each holds its received blob, 2 bytes per value plus the header", async () => {
    const f16 = (id: string, seed: number) => {
      const adapter = randomLoraAdapter(createRng(seed), [
        { module: "model.layers.0.self_attn.q_proj", rank: 8, inFeatures: 64, outFeatures: 64, scale: 0.5 },
        { module: "model.layers.0.mlp.down_proj", rank: 8, inFeatures: 176, outFeatures: 67, scale: 0.5 },
      ]);
      const files = writePeftAdapter(adapter, { dtype: "F16" });
      return { id: `${id}-16`, sha: edge.put(`${id}-16`, files), file: files.safetensors.length, converted: loadPeftAdapter(files.config, files.safetensors) };
    };
    const [x, y] = [f16("x", 200), f16("y", 201)];
    expect(x.file).toBeLessThan(0.6 * adapterBytes(x.converted)); // the converted values: 4 bytes each, in arrays of their own
    const cache = new AdapterCache(new EdgeAdapterSource({ baseUrl: edge.url, secret: SECRET }), { budgetBytes: x.file + y.file, parse: parseAdapter });
    const lx = await cache.acquire(x.id, x.sha);
    expect([...lx.adapter.modules.values()].every((m) => m.a instanceof HalfFactor && m.b instanceof HalfFactor)).toBe(true);
    const q = lx.adapter.modules.get("model.layers.0.mlp.down_proj")!;
    expect(factorValues(q.b)).toEqual(x.converted.modules.get("model.layers.0.mlp.down_proj")!.b);
    lx.release();
    (await cache.acquire(y.id, y.sha)).release();
    expect(cache.stats()).toMatchObject({ entries: 2, evictionsTotal: 0, bytes: x.file + y.file });
  });

  it("admin eviction skips pinned adapters", async () => {
    const cache = newCache(1 << 30);
    const a = await cache.acquire("a", shas.a!);
    expect(cache.evict("a")).toEqual({ evicted: [], pinned: [shas.a] });
    a.release();
    expect(cache.evict("a")).toEqual({ evicted: [shas.a], pinned: [] });
    expect(cache.list()).toEqual([]);
  });

  it("a wrong secret is refused by the edge: 502 with the edge's status, nothing cached", async () => {
    const cache = newCache(1 << 30, "not-the-secret");
    const before = edge.unauthorized;
    await expect(cache.acquire("a", shas.a!)).rejects.toMatchObject({ status: 502, type: "adapter_unavailable" });
    expect(edge.unauthorized).toBeGreaterThan(before);
    expect(cache.stats().entries).toBe(0);
  });

  it("an unknown adapter is a 404; an unparseable one a 422", async () => {
    const cache = newCache(1 << 30);
    await expect(cache.acquire("nope", shas.a!)).rejects.toMatchObject({ status: 404 });
    const bad = new TextEncoder().encode("not safetensors at all");
    const sha = edge.put("bad", { config: { peft_type: "LORA" }, safetensors: bad });
    await expect(cache.acquire("bad", sha)).rejects.toMatchObject({ status: 422, type: "invalid_adapter" });
    expect(cache.has(sha)).toBe(false);
  });

  it("a blob over the size limit is refused while reading, nothing cached", async () => {
    const cache = new AdapterCache(new EdgeAdapterSource({ baseUrl: edge.url, secret: SECRET, maxBytes: 1000 }), {
      budgetBytes: 1 << 30,
      parse: (cfg, bytes) => loadPeftAdapter(cfg, bytes),
    });
    await expect(cache.acquire("a", shas.a!)).rejects.toMatchObject({ status: 502, message: expect.stringMatching(/limit of 1000 bytes/) });
    expect(cache.stats().entries).toBe(0);
  });
});
