import { describe, expect, it } from "vitest";
import { createRng, randomLoraAdapter } from "#core/random/index";
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { LoraAdapter } from "#core/lora/types";
import { mixKey } from "#core/wire/mix-key";
import { ComposedMixPool, resolveMix, type AdapterProvider } from "./mix-resolver.js";

const manifest = {
  id: "m",
  maxRank: 16,
  targets: [
    { module: "l.q", in: 8, out: 8, mode: "unmerged", fanInFanOut: false },
    { module: "l.fused", in: 8, out: 24, mode: "merge-only", fanInFanOut: false },
  ],
} as unknown as ModelManifest;

const sha = (c: string) => c.repeat(64);

function provider(adapters: Record<string, LoraAdapter>) {
  const pins: Record<string, number> = {};
  const p: AdapterProvider = {
    async acquire(id) {
      pins[id] = (pins[id] ?? 0) + 1;
      return { adapter: adapters[id]!, release: () => void pins[id]!-- };
    },
  };
  return { p, pins };
}

describe("resolveMix", () => {
  const a = randomLoraAdapter(createRng(1), [{ module: "l.q", rank: 4, inFeatures: 8, outFeatures: 8 }]);
  const f = randomLoraAdapter(createRng(2), [{ module: "l.fused", rank: 2, inFeatures: 8, outFeatures: 24 }]);
  const big = randomLoraAdapter(createRng(3), [{ module: "l.q", rank: 32, inFeatures: 8, outFeatures: 8 }]);

  it("all-zero or empty mixes are the base model and lease nothing", async () => {
    const { p, pins } = provider({ a });
    expect((await resolveMix([], manifest, p)).handle).toBeNull();
    expect((await resolveMix([{ id: "a", sha256: sha("a"), weight: 0 }], manifest, p)).handle).toBeNull();
    expect(pins).toEqual({});
  });

  it("composes, keys and pins; marks merge-only modules; release unpins", async () => {
    const { p, pins } = provider({ a, f });
    const entries = [
      { id: "a", sha256: sha("a"), weight: 0.5 },
      { id: "f", sha256: sha("f"), weight: 2 },
    ];
    const r = await resolveMix(entries, manifest, p);
    expect(r.handle!.key).toBe(mixKey(entries));
    expect(r.handle!.mix.modules.get("l.q")!.rank).toBe(4);
    expect(r.handle!.mergeOnlyModules).toEqual(["l.fused"]);
    expect(pins).toEqual({ a: 1, f: 1 });
    r.release();
    expect(pins).toEqual({ a: 0, f: 0 });
  });

  it("refuses an adapter over the model's rank cap with 422 and releases what it leased", async () => {
    const { p, pins } = provider({ a, big });
    await expect(
      resolveMix([{ id: "a", sha256: sha("a"), weight: 1 }, { id: "big", sha256: sha("b"), weight: 1 }], manifest, p),
    ).rejects.toMatchObject({ status: 422, type: "incompatible_adapter", message: expect.stringMatching(/rank 32/) });
    expect(pins).toEqual({ a: 0, big: 0 });
  });

  it("the same blob under two ids (configs may differ) is two mixes, never one shared composition", async () => {
    const loud = { ...a, modules: new Map([...a.modules].map(([k, m]) => [k, { ...m, scale: m.scale * 2 }])) };
    const { p } = provider({ a, loud });
    const pool = new ComposedMixPool();
    const quietEntries = [{ id: "a", sha256: sha("a"), weight: 1 }];
    const loudEntries = [{ id: "loud", sha256: sha("a"), weight: 1 }];
    expect(mixKey(quietEntries)).not.toBe(mixKey(loudEntries));
    const [x, y] = await Promise.all([resolveMix(quietEntries, manifest, p, pool), resolveMix(loudEntries, manifest, p, pool)]);
    const qx = x.handle!.mix.modules.get("l.q")!;
    const qy = y.handle!.mix.modules.get("l.q")!;
    expect(qy.at[0]).toBeCloseTo(2 * qx.at[0]!, 6);
    x.release();
    y.release();
  });

  it("concurrent requests with the same mix share one composition", async () => {
    const { p } = provider({ a });
    const pool = new ComposedMixPool();
    const entries = [{ id: "a", sha256: sha("a"), weight: 1 }];
    const [x, y] = await Promise.all([resolveMix(entries, manifest, p, pool), resolveMix(entries, manifest, p, pool)]);
    expect(x.handle!.mix).toBe(y.handle!.mix);
    x.release();
    expect(pool.size).toBe(1);
    y.release();
    expect(pool.size).toBe(0);
  });

  it("{a,b} and {b,a} (and {a:½,b,a:½}) are one canonical key and compose once", async () => {
    const b = randomLoraAdapter(createRng(4), [{ module: "l.q", rank: 2, inFeatures: 8, outFeatures: 8 }]);
    let composed = 0;
    const { p, pins } = provider({ a, b });
    const pool = new ComposedMixPool();
    const spy = { acquire: (key: string, compose: () => any) => pool.acquire(key, () => (composed++, compose())) } as ComposedMixPool;
    const ab = [{ id: "a", sha256: sha("a"), weight: 1 }, { id: "b", sha256: sha("b"), weight: 0.5 }];
    const ba = [{ id: "b", sha256: sha("b"), weight: 0.5 }, { id: "a", sha256: sha("a"), weight: 1 }];
    const split = [{ id: "a", sha256: sha("a"), weight: 0.5 }, { id: "b", sha256: sha("b"), weight: 0.5 }, { id: "a", sha256: sha("a"), weight: 0.5 }];
    const [x, y, z] = await Promise.all([resolveMix(ab, manifest, p, spy), resolveMix(ba, manifest, p, spy), resolveMix(split, manifest, p, spy)]);
    expect(composed).toBe(1);
    expect(x.handle!.key).toBe(mixKey(ab));
    expect(y.handle!.key).toBe(x.handle!.key);
    expect(z.handle!.key).toBe(x.handle!.key);
    expect(y.handle!.mix).toBe(x.handle!.mix);
    expect(z.handle!.mix).toBe(x.handle!.mix);
    expect(x.handle!.mix.modules.get("l.q")!.rank).toBe(6); // a once (rank 4) + b (rank 2): the repeat of a merged
    for (const r of [x, y, z]) r.release();
    expect(pool.size).toBe(0);
    expect(pins).toEqual({ a: 0, b: 0 });
  });

  it("a released mix's arrays are the next composition's (same shapes), never while a request or a hold still reads them; each composition exact", async () => {
    const b = randomLoraAdapter(createRng(5), [{ module: "l.q", rank: 4, inFeatures: 8, outFeatures: 8 }]);
    const { p } = provider({ a, b });
    const pool = new ComposedMixPool();
    const mixA = [{ id: "a", sha256: sha("a"), weight: 0.5 }];
    const mixB = [{ id: "b", sha256: sha("b"), weight: -2 }];
    const alone = async (entries: typeof mixA) => (await resolveMix(entries, manifest, p)).handle!.mix.modules.get("l.q")!;
    const x = await resolveMix(mixA, manifest, p, pool);
    const xq = x.handle!.mix.modules.get("l.q")!;
    // While x's request holds it, a second mix of the same shapes gets fresh arrays.
    const y = await resolveMix(mixB, manifest, p, pool);
    const yq = y.handle!.mix.modules.get("l.q")!;
    expect(yq.at.buffer).not.toBe(xq.at.buffer);
    // x leaves while a background reader holds it: still not recycled.
    const release = x.handle!.hold!();
    x.release();
    y.release();
    expect(pool.bufferStats().freeBuffers).toBe(2); // y's
    const z = await resolveMix(mixA, manifest, p, pool);
    const zq = z.handle!.mix.modules.get("l.q")!;
    expect(zq).toBe(xq); // x held: still live, shared
    expect([yq.at, yq.bt]).not.toContain(zq.at);
    release();
    z.release();
    expect(pool.bufferStats().freeBuffers).toBe(4);
    // The next composition is written into the buffers the last one left, and equals a composition into fresh memory.
    const w = await resolveMix(mixB, manifest, p, pool);
    const wq = w.handle!.mix.modules.get("l.q")!;
    const left = [xq.at, xq.bt, yq.at, yq.bt]; // Aᵗ [8, 4] and Bᵗ [4, 8]: one length, one free list
    expect(left.includes(wq.at) && left.includes(wq.bt) && wq.at !== wq.bt).toBe(true);
    expect(wq.at).toEqual((await alone(mixB)).at);
    expect(wq.bt).toEqual((await alone(mixB)).bt);
    expect(pool.bufferStats()).toMatchObject({ reused: 2 });
    // Free + live bytes never exceed the most live bytes held at once (two mixes of 2 × 32 floats).
    expect(pool.bufferStats().freeBytes + pool.stats().bytes).toBeLessThanOrEqual(2 * 2 * 32 * 4);
    w.release();
  });

  it("the free buffers are dropped once no mix has been live for idleReleaseMs (a spike is not held for good); a mix acquired meanwhile keeps them", async () => {
    const { p } = provider({ a });
    const pool = new ComposedMixPool(60);
    const mixA = [{ id: "a", sha256: sha("a"), weight: 0.5 }];
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    (await resolveMix(mixA, manifest, p, pool)).release();
    expect(pool.bufferStats().freeBuffers).toBe(2);
    await sleep(30);
    const again = await resolveMix(mixA, manifest, p, pool); // reuses the free buffers, cancels the release
    expect(pool.bufferStats()).toMatchObject({ freeBuffers: 0, reused: 2 });
    await sleep(90);
    expect(pool.stats().entries).toBe(1); // live all along: nothing to drop
    again.release();
    expect(pool.bufferStats().freeBuffers).toBe(2);
    await sleep(120);
    expect(pool.bufferStats()).toMatchObject({ freeBuffers: 0, freeBytes: 0 });
    // The peak is forgotten too: the next mix's arrays, once released, are kept again within the new peak.
    (await resolveMix(mixA, manifest, p, pool)).release();
    expect(pool.bufferStats().freeBuffers).toBe(2);
  });

  it("refuses a mix_key that disagrees with the entries (400) before leasing anything; accepts core's key", async () => {
    const { p, pins } = provider({ a });
    const entries = [{ id: "a", sha256: sha("a"), weight: 1 }];
    for (const wrong of ["", "a", mixKey([{ ...entries[0]!, weight: 2 }]), mixKey(entries) + " "]) {
      await expect(resolveMix(entries, manifest, p, undefined, wrong)).rejects.toMatchObject({ status: 400, type: "invalid_request_error" });
    }
    expect(pins).toEqual({});
    const ok = await resolveMix(entries, manifest, p, undefined, mixKey(entries));
    expect(ok.handle!.key).toBe(mixKey(entries));
    ok.release();
    // The base model's key is "": an all-zero mix with key "" is the base model.
    expect((await resolveMix([{ ...entries[0]!, weight: 0 }], manifest, p, undefined, "")).handle).toBeNull();
  });

  it("refuses a mix whose composed factors overflow float32 (weight 1e38, or an adapter's own values at 1e38) with 422, pooling nothing", async () => {
    const huge = { ...a, modules: new Map([...a.modules].map(([k, m]) => [k, { ...m, a: m.a.map((v, j) => (j === 3 ? 1e38 : v)) }])) };
    const { p, pins } = provider({ a, huge });
    const pool = new ComposedMixPool();
    for (const entries of [
      [{ id: "a", sha256: sha("a"), weight: 1e38 }],
      [{ id: "a", sha256: sha("a"), weight: -3e38 }],
      [{ id: "huge", sha256: sha("h"), weight: 1 }],
      [{ id: "a", sha256: sha("a"), weight: 1 }, { id: "huge", sha256: sha("h"), weight: 10 }],
    ]) {
      await expect(resolveMix(entries, manifest, p, pool)).rejects.toMatchObject({ status: 422, type: "unprocessable_entity_error", message: expect.stringMatching(/overflows float32.*module l\.q/) });
    }
    expect(pool.size).toBe(0);
    expect(pins).toEqual({ a: 0, huge: 0 });
    // Large but representable weights still compose (the bound is on the composed factors, 1e15).
    const ok = await resolveMix([{ id: "a", sha256: sha("a"), weight: 1e6 }], manifest, p, pool);
    expect(ok.handle!.mix.modules.get("l.q")!.rank).toBe(4);
    ok.release();
  });
});
