// Runner-side bake on the real tiny model: files, report, fidelity, errors, and the thread ≡ inline.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeMix } from "#core/compose/index";
import { HalfFactor, type LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import type { BakeRequest } from "#core/wire/bake";
import { EngineError } from "../engine/errors.js";
import type { AdapterProvider } from "../engine/mix-resolver.js";
import { ensureModel } from "../model-build/index.js";
import { loadModel, type BaseModel } from "../model/index.js";
import { bakeInline, runBakeJob } from "./bake-job.js";
import { bakeOnWorkerThread } from "./bake-thread.js";
import { compareLogits, klDivergence } from "./fidelity.js";
import { probeSequences } from "./probe-set.js";
import { RunnerBaker } from "./runner-baker.js";

const SHA = (n: number) => n.toString(16).padStart(64, "0");

/** Adapters held in memory, keyed by id (the cache's interface; the edge fetch is not under test here). */
function memoryProvider(adapters: Map<string, LoraAdapter>): AdapterProvider & { held: number } {
  const p = {
    held: 0,
    async acquire(id: string) {
      const adapter = adapters.get(id);
      if (!adapter) throw new EngineError("adapter_unavailable", `no adapter ${id}`);
      p.held++;
      return { adapter, release: () => void p.held-- };
    },
  };
  return p;
}

describe("KL divergence and top-1 agreement (plain definitions)", () => {
  it("KL([.5,.5] ‖ [.9,.1]) = .5·ln(.5/.9) + .5·ln(.5/.1); 0 for equal distributions", () => {
    const logP = Float64Array.from([0.5, 0.5], Math.log);
    const logQ = Float64Array.from([0.9, 0.1], Math.log);
    expect(klDivergence(logP, logQ)).toBeCloseTo(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), 12);
    expect(klDivergence(logP, logP)).toBe(0);
  });

  it("compareLogits works on unnormalised logits, position by position", () => {
    // Two positions, vocab 3: equal at p0 (shifted by a constant: same softmax), different argmax at p1.
    const exact = Float32Array.from([1, 2, 3, 0, 0, 5]);
    const baked = Float32Array.from([11, 12, 13, 0, 6, 5]);
    const { kl, agree } = compareLogits(exact, baked, 3);
    expect(kl[0]).toBeCloseTo(0, 6);
    expect(kl[1]).toBeGreaterThan(0.1);
    expect(agree).toEqual([true, false]);
  });

  it("the probe set is fixed by its seed and capped by the context", () => {
    const a = probeSequences({ sequences: 3, tokens: 10, seed: 7 }, 100, 64);
    expect(a).toEqual(probeSequences({ sequences: 3, tokens: 10, seed: 7 }, 100, 64));
    expect(a).not.toEqual(probeSequences({ sequences: 3, tokens: 10, seed: 8 }, 100, 64));
    expect(probeSequences({ sequences: 1, tokens: 10, seed: 7 }, 100, 4)[0]).toHaveLength(4);
    expect(a.flat().every((t) => t >= 0 && t < 100)).toBe(true);
  });
});

describe("RunnerBaker on loraedge-tiny", () => {
  let model: BaseModel;
  let adapters: Map<string, LoraAdapter>;

  beforeAll(async () => {
    model = await loadModel(await ensureModel("loraedge-tiny"), { backend: "node", threads: 1 });
    const targets = model.manifest.targets.filter((t) => t.mode === "unmerged");
    const make = (seed: number, rank: number, pick: (m: string) => boolean) =>
      randomLoraAdapter(
        createRng(seed),
        targets.filter((t) => pick(t.module)).map((t) => ({ module: t.module, rank, inFeatures: t.in, outFeatures: t.out, scale: 0.5 })),
        { baseModel: model.manifest.id },
      );
    adapters = new Map([
      ["a", make(1, 4, (m) => /q_proj|v_proj/.test(m))],
      ["b", make(2, 8, (m) => /v_proj|o_proj/.test(m))],
      ["huge", make(3, 200, () => true)],
    ]);
  });
  afterAll(() => model?.dispose());

  const request = (over: Partial<BakeRequest> = {}): BakeRequest => ({
    model: model.manifest.id,
    adapters: [
      { id: "a", sha256: SHA(1), weight: 0.7 },
      { id: "b", sha256: SHA(2), weight: -0.4 },
    ],
    strategy: "linear",
    ...over,
  });

  it("linear at full rank is lossless: the stored files equal the exact mix (KL ≈ 0, top-1 agreement 1)", async () => {
    const provider = memoryProvider(adapters);
    const out = await new RunnerBaker(provider, { runJob: bakeInline }).bake(model, request());
    expect(provider.held).toBe(0);
    const baked = loadPeftAdapter(out.adapter_config, new Uint8Array(Buffer.from(out.safetensors_base64, "base64")));
    // ΔW of the baked adapter ≡ Σ wᵢ·ΔWᵢ, checked on the logits of a probe by an independent forward.
    const exact = composeMix([
      { adapter: adapters.get("a")!, weight: 0.7 },
      { adapter: adapters.get("b")!, weight: -0.4 },
    ]);
    const probe = probeSequences({ sequences: 1, tokens: 12, seed: 3 }, model.manifest.vocabSize, model.manifest.contextLength)[0];
    const [p, q] = await model.step(
      [
        { tokens: probe, cache: null, mix: exact },
        { tokens: probe, cache: null, mix: composeMix([{ adapter: baked, weight: 1 }]) },
      ],
      { allLogits: true },
    );
    let worst = 0;
    for (let i = 0; i < p.logits.length; i++) worst = Math.max(worst, Math.abs(p.logits[i] - q.logits[i]));
    expect(worst).toBeLessThan(1e-4);
    expect(out.report.total_discarded_energy).toBeLessThan(1e-9);
    expect(out.report.fidelity.kl_mean).toBeLessThan(1e-6);
    expect(out.report.fidelity.top1_agreement).toBe(1);
    expect(out.report.fidelity.positions).toBe(out.report.fidelity.probe.sequences * out.report.fidelity.probe.tokens_per_sequence);
    expect(out.report.rank).toBe(12);
  });

  it("truncating to rank 1 loses energy, and the fidelity report shows it (KL > 0)", async () => {
    const out = await new RunnerBaker(memoryProvider(adapters), { runJob: bakeInline }).bake(model, request({ strategy: "svd", rank: 1 }));
    expect(out.report.rank).toBe(1);
    expect(out.report.total_discarded_energy).toBeGreaterThan(0.01);
    expect(out.report.fidelity.kl_mean).toBeGreaterThan(0);
    expect(out.report.fidelity.kl_max).toBeGreaterThanOrEqual(out.report.fidelity.kl_mean);
  });

  it("a dense strategy (ties) bakes and is measured", async () => {
    const out = await new RunnerBaker(memoryProvider(adapters), { runJob: bakeInline }).bake(model, request({ strategy: "ties", density: 0.5, rank: 4 }));
    expect(out.report.strategy).toBe("ties");
    expect(out.report.density).toBe(0.5);
    expect(out.report.fidelity.top1_agreement).toBeGreaterThan(0);
    expect(out.report.fidelity.kl_mean).toBeGreaterThan(0);
  });

  it("the worker thread returns the same files as the inline bake", async () => {
    const job = { terms: [{ adapter: adapters.get("a")!, weight: 0.7 }, { adapter: adapters.get("b")!, weight: -0.4 }], options: { strategy: "ties" as const, density: 0.6, rank: 3 }, baseModel: "m" };
    const inThread = await bakeOnWorkerThread(job);
    const inline = runBakeJob(job);
    expect(inThread.config).toEqual(inline.config);
    expect(Buffer.from(inThread.safetensors).equals(Buffer.from(inline.safetensors))).toBe(true);
    expect(inThread.report).toEqual(inline.report);
    // A core BakeError thrown inside the thread comes back as a 400 naming the problem.
    const baker = new RunnerBaker(memoryProvider(adapters), { runJob: bakeOnWorkerThread });
    await expect(baker.bake(model, request({ strategy: "ties" }))).rejects.toMatchObject({ status: 400, message: expect.stringContaining("density") });
  });

  it("the worker thread bakes adapters whose tensors are views of their whole blob (F32 as received) as the inline bake does; the views stay readable", async () => {
    const f32 = writePeftAdapter(adapters.get("b")!, { dtype: "F32" });
    const views = loadPeftAdapter(f32.config, f32.safetensors);
    const job = { terms: [{ adapter: adapters.get("a")!, weight: 0.7 }, { adapter: views, weight: -0.4 }], options: { strategy: "linear" as const }, baseModel: "m" };
    const inThread = await bakeOnWorkerThread(job);
    const inline = runBakeJob(job);
    expect(Buffer.from(inThread.safetensors).equals(Buffer.from(inline.safetensors))).toBe(true);
    expect(f32.safetensors.buffer.byteLength).toBeGreaterThan(0); // not detached by a transfer
    expect([...views.modules.values()].every((m) => m.a.buffer === f32.safetensors.buffer && m.a.length > 0)).toBe(true);
  });

  it("adapters as the runner caches F16 files (factors kept 16-bit) bake, in the thread and inline, to the files of the same values loaded as F32", async () => {
    const f16 = writePeftAdapter(adapters.get("b")!, { dtype: "F16" });
    const halves = loadPeftAdapter(f16.config, f16.safetensors, { keepHalves: true });
    const converted = loadPeftAdapter(f16.config, f16.safetensors);
    const job = (b: LoraAdapter<LoraFactor>) => ({ terms: [{ adapter: adapters.get("a")!, weight: 0.7 }, { adapter: b, weight: -0.4 }], options: { strategy: "ties" as const, density: 0.6, rank: 3 }, baseModel: "m" });
    const want = runBakeJob(job(converted));
    for (const got of [runBakeJob(job(halves)), await bakeOnWorkerThread(job(halves))]) {
      expect(got.report).toEqual(want.report);
      expect(Buffer.from(got.safetensors).equals(Buffer.from(want.safetensors))).toBe(true);
    }
    expect([...halves.modules.values()].every((m) => m.a instanceof HalfFactor && (m.a as HalfFactor).bits.buffer === f16.safetensors.buffer)).toBe(true); // the cached adapter is untouched
  });

  it("one bake at a time by default: a second concurrent bake is refused as overloaded (429) and the first completes", async () => {
    const baker = new RunnerBaker(memoryProvider(adapters), { runJob: bakeInline });
    const [first, second] = await Promise.allSettled([baker.bake(model, request()), baker.bake(model, request())]);
    expect(first.status).toBe("fulfilled");
    expect(second.status).toBe("rejected");
    expect((second as PromiseRejectedResult).reason).toMatchObject({ type: "overloaded", status: 429 });
    await expect(baker.bake(model, request())).resolves.toBeTruthy(); // the slot was given back
  });

  it("drain (SIGTERM) waits for the bake in flight to finish, or says it is still running when the time runs out", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated: typeof bakeInline = async (job) => {
      await gate;
      return bakeInline(job);
    };
    const baker = new RunnerBaker(memoryProvider(adapters), { runJob: gated });
    expect(await baker.drain(10)).toBe(true); // nothing in flight
    const baking = baker.bake(model, request());
    await new Promise((r) => setTimeout(r, 0));
    expect(baker.running).toBe(1);
    expect(await baker.drain(20)).toBe(false); // still gated
    let drained = false;
    const draining = baker.drain(60_000).then((ok) => (drained = ok));
    await new Promise((r) => setTimeout(r, 20));
    expect(drained).toBe(false);
    release();
    await draining;
    expect(drained).toBe(true);
    await expect(baking).resolves.toMatchObject({ report: { strategy: "linear" } });
    expect(baker.running).toBe(0);
  });

  it("bad requests are 4xx and release every lease", async () => {
    const provider = memoryProvider(adapters);
    const baker = new RunnerBaker(provider, { runJob: bakeInline });
    const status = async (r: BakeRequest) => {
      try {
        await baker.bake(model, r);
        return 200;
      } catch (e) {
        expect(e).toBeInstanceOf(EngineError);
        return (e as EngineError).status;
      }
    };
    expect(await status(request({ strategy: "ties" }))).toBe(400); // ties needs a density (BakeError from the thread)
    expect(await status(request({ strategy: "linear", density: 0.5 }))).toBe(400);
    expect(await status(request({ adapters: [{ id: "a", sha256: SHA(1), weight: 0 }] }))).toBe(400);
    expect(await status(request({ adapters: [{ id: "huge", sha256: SHA(3), weight: 1 }] }))).toBe(422); // rank above the model's cap
    expect(await status(request({ adapters: [{ id: "a", sha256: SHA(1), weight: 1 }, { id: "missing", sha256: SHA(9), weight: 1 }] }))).toBe(502);
    expect(provider.held).toBe(0);
  });
});
