// Merge-on-demand decisions and the merged-session LRU, on the real tiny model.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ensureModel } from "../model-build/index.js";
import type { LeasedLru } from "../cache/leased-lru.js";
import { loadModel, type BaseModel, type ModelVariant } from "../model/index.js";
import { randomMix } from "../model/testing/random-mix.js";
import { MergeManager, type MixHandle } from "./merge-manager.js";

describe("MergeManager on loraedge-tiny", () => {
  let model: BaseModel;
  const handle = (seed: number): MixHandle => ({
    key: `mix-${seed}`,
    mix: randomMix(model.manifest.targets, (m) => (m.endsWith("v_proj") ? 8 : 0), seed),
    mergeOnlyModules: [],
  });

  /** Weight bytes of one merged session of the model, measured once. */
  let sessionBytes: number;
  /** The manager's leased LRU of merged sessions (test access to its budget and entries). */
  const sessionsOf = (merges: MergeManager) => (merges as unknown as { sessions: LeasedLru<{ variant: ModelVariant }> }).sessions;

  beforeAll(async () => {
    model = await loadModel(await ensureModel("loraedge-tiny"), { backend: "node", threads: 1 });
    const probe = new MergeManager(model, { policy: "always", budgetBytes: 1 << 30 });
    (await probe.target(handle(10))).release();
    sessionBytes = probe.stats().bytes;
    await probe.dispose();
  });
  afterAll(() => model?.dispose());

  it("auto: stays unmerged without demand, merges a hot mix in the background and routes new requests to it", async () => {
    const merges = new MergeManager(model, { policy: "auto", budgetBytes: 1 << 30 });
    const hot = handle(1);
    const first = await merges.target(hot);
    expect(first.target.merged).toBe(false);
    expect(first.target.variant).toBe(model);
    expect(first.target.mix).toBe(hot.mix);
    first.release();
    expect(merges.stats().building).toBe(0);

    // Measured: decode rows with LoRA inputs cost 1 ms more than without; the mix generates ≈ 300 tokens/s.
    for (let i = 0; i < 20; i++) {
      merges.onStep({ kind: "decode", rows: 4, mixedRows: 4, tokens: 4, ms: 12, merged: false });
      merges.onStep({ kind: "decode", rows: 4, mixedRows: 0, tokens: 4, ms: 8, merged: false });
    }
    merges.onTokens(hot.key, 3000);
    const { overheadMsPerToken, buildMs } = merges.estimates();
    expect(overheadMsPerToken).toBeCloseTo(1, 5);
    expect(300 * overheadMsPerToken * 30).toBeGreaterThan(buildMs);

    (await merges.target(hot)).release(); // triggers the build
    expect(merges.stats().building).toBe(1);
    for (let i = 0; i < 200 && merges.stats().buildsTotal === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const routed = await merges.target(hot);
    expect(routed.target.merged).toBe(true);
    expect(routed.target.mix).toBeNull();
    expect(routed.target.mixKey).toBe(hot.key);
    expect(routed.target.variant).not.toBe(model);
    routed.release();
    const stats = merges.stats();
    expect(stats.sessions).toHaveLength(1);
    expect(stats.sessions[0]!.hits).toBe(1);
    expect(stats.estimates.buildMs).toBe(stats.sessions[0]!.buildMs);

    // A cold mix (no demand) is not merged.
    const cold = await merges.target(handle(2));
    expect(cold.target.merged).toBe(false);
    await merges.dispose();
  });

  it("merged sessions live in a byte-bounded LRU; sessions in use are not evicted", async () => {
    expect(sessionBytes).toBeGreaterThan(0);

    const merges = new MergeManager(model, { policy: "always", budgetBytes: Math.floor(sessionBytes * 1.5) });
    const a = await merges.target(handle(11));
    expect(a.target.merged).toBe(true);
    // a is in use: building b goes over budget instead of evicting it.
    const b = await merges.target(handle(12));
    expect(merges.stats().sessions.map((s) => s.key).sort()).toEqual(["mix-11", "mix-12"]);
    a.release();
    b.release();
    expect(merges.stats().sessions.map((s) => s.key)).toEqual(["mix-12"]);
    const c = await merges.target(handle(13));
    c.release();
    expect(merges.stats().sessions.map((s) => s.key)).toEqual(["mix-13"]);
    expect(merges.stats().evictionsTotal).toBe(2);
    await merges.dispose();
  });

  it("a merged session whose release fails is still evicted; the failure does not fail another mix's build", async () => {
    // Fault injection: ORT's session release throws (cannot be produced for real here).
    const faulty = {
      manifest: model.manifest,
      createMerged: async (mix: MixHandle["mix"]) => {
        const variant = await model.createMerged(mix);
        const release = variant.dispose.bind(variant);
        return Object.assign(variant, {
          dispose: async () => {
            await release();
            throw new Error("injected: session release failed");
          },
        });
      },
    } as unknown as BaseModel;
    const merges = new MergeManager(faulty, { policy: "always", budgetBytes: Math.floor(sessionBytes * 1.5) });
    const a = await merges.target(handle(31));
    a.release();
    // b's build must evict a (whose release throws) to fit.
    const b = await merges.target(handle(32));
    expect(b.target.merged).toBe(true);
    expect(merges.stats().sessions.map((s) => s.key)).toEqual(["mix-32"]);
    expect(merges.stats().evictionsTotal).toBe(1);
    b.release();
    await merges.dispose();
  });

  it("a mix touching merge-only targets waits for a merged session; refused with 422 when none fits the budget", async () => {
    const mergeOnly = { ...handle(20), mergeOnlyModules: ["model.layers.0.self_attn.v_proj"] };
    const never = new MergeManager(model, { policy: "never", budgetBytes: 1 << 30 });
    const t = await never.target(mergeOnly);
    expect(t.target.merged).toBe(true);
    t.release();
    await never.dispose();
    const tiny = new MergeManager(model, { policy: "never", budgetBytes: 1000 });
    await expect(tiny.target(mergeOnly)).rejects.toMatchObject({ status: 422, message: expect.stringMatching(/merge-only targets .* RUNNER_MERGED_MB/) });
  });

  it("demand records of mixes gone cold are forgotten, so the books stay bounded by the live mixes", async () => {
    const merges = new MergeManager(model, { policy: "auto", budgetBytes: 1 << 30 });
    const now = vi.spyOn(Date, "now").mockReturnValue(1_000_000);
    try {
      for (let i = 0; i < 1000; i++) merges.onTokens(`cold-${i}`, 30); // 3 tok/s each
      expect(merges.stats().trackedMixes).toBe(1000);
      now.mockReturnValue(1_000_000 + 60_000); // 6 τ later: 3 · e⁻⁶ ≈ 0.0074 tok/s, below the floor
      for (let i = 0; i < 23; i++) merges.onTokens("hot", 30);
      expect(merges.stats().trackedMixes).toBe(1001); // no sweep before the 1024th report
      merges.onTokens("hot", 30);
      expect(merges.stats().trackedMixes).toBe(1);
    } finally {
      now.mockRestore();
    }
  });

  it("with no room, the idle session whose mix has the least demand goes first, not the least recently used", async () => {
    const merges = new MergeManager(model, { policy: "always", budgetBytes: Math.floor(sessionBytes * 2.5) });
    const [hot, cold, next] = [handle(40), handle(41), handle(42)];
    (await merges.target(hot)).release();
    (await merges.target(cold)).release(); // both idle; hot least recently used
    for (let i = 0; i < 5; i++) {
      merges.onStep({ kind: "decode", rows: 4, mixedRows: 4, tokens: 4, ms: 12, merged: false });
      merges.onStep({ kind: "decode", rows: 4, mixedRows: 0, tokens: 4, ms: 8, merged: false });
    }
    merges.onTokens(hot.key, 3000);
    (await merges.target(next)).release(); // room for one more: cold goes
    expect(merges.stats().sessions.map((s) => s.key).sort()).toEqual([hot.key, next.key]);
    expect(merges.stats().evictionsTotal).toBe(1);
    await merges.dispose();
  });

  it("an eviction whose dispose is still pending never evicts a session a request took meanwhile", async () => {
    const merges = new MergeManager(model, { policy: "always", budgetBytes: 1 << 30 });
    const sessions = sessionsOf(merges);
    const ha = handle(31);
    const hb = handle(32);
    (await merges.target(ha)).release();
    (await merges.target(hb)).release(); // both idle, a least recently used
    const aVariant = sessions.get(ha.key)!.value.variant;
    const realDispose = aVariant.dispose.bind(aVariant);
    let finishDispose!: () => void;
    aVariant.dispose = () => new Promise<void>((resolve) => (finishDispose = () => void realDispose().then(resolve)));
    const pass = sessions.setBudget(sessionBytes); // room for one: evicts a, then waits on its dispose
    expect(sessions.list().map((e) => e.key)).toEqual([hb.key]);
    const b = await merges.target(hb); // a request takes b while the pass waits
    expect(b.target.merged).toBe(true);
    void sessions.setBudget(1); // now b is over budget too, but in use
    finishDispose();
    await pass;
    expect(sessions.list().map((e) => e.key)).toEqual([hb.key]); // b is in use: not evicted
    b.release(); // now idle and over budget: evicted
    await new Promise((r) => setTimeout(r, 50));
    expect(sessions.size).toBe(0);
    await merges.dispose();
  });
});
