// End to end through the public API: the real gpu-runner process and the real worker under
// `wrangler dev` (local D1 + R2), started the way `npm start` starts them. A tenant uploads
// three PEFT adapters of different ranks, completes with a weighted mix (non-stream and
// stream), and checks that echo+logprobs with the mix {a:1, b:1} equals the same request with
// an uploaded adapter built as cat(a, b) (core's composeMix → mixAsAdapter → writePeftAdapter).
// Then the daily budget reservation under the real wrangler dev (local D1, waitUntil): concurrent
// requests against a small budget, and a stream the client drops.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeMix, mixAsAdapter } from "#core/compose/index";
import type { LoraAdapter } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { writePeftAdapter } from "#core/peft/index";
import { E2E_MODEL, randomAdapterFor, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const KEY = "le_e2e_marketplace_" + "m".repeat(24);
const MODEL = E2E_MODEL;

describe("edge marketplace end to end (runner + wrangler dev)", () => {
  let stack: EdgeStack | undefined;
  let base = "";

  const api = async (p: string, init: { method?: string; json?: unknown; body?: FormData } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${KEY}` };
    let body: string | FormData | undefined = init.body;
    if (init.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.json);
    }
    return fetch(base + p, { method: init.method ?? (body ? "POST" : "GET"), headers, body });
  };
  const ok = async (res: Response, status = 200) => {
    const text = await res.text();
    if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${text}`);
    return JSON.parse(text);
  };
  /**
   * The usage view of `key` once nothing is reserved: every request settled, its usage written
   * (the edge writes it in batches, USAGE_FLUSH_MS after a request, and gives its lease back once idle).
   */
  const settledUsage = async (key = KEY) => {
    for (let i = 0; i < 100; i++) {
      const usage = await ok(await fetch(`${base}/v1/usage`, { headers: { authorization: `Bearer ${key}` } }));
      if (usage.data.every((d: { reserved_tokens: number }) => d.reserved_tokens === 0)) return usage;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("reservations never settled");
  };
  const upload = async (name: string, adapter: LoraAdapter) => {
    const files = writePeftAdapter(adapter, { baseModel: MODEL });
    const form = new FormData();
    form.set("name", name);
    form.set("base_model", MODEL);
    form.set("adapter_config.json", new Blob([JSON.stringify(files.config)], { type: "application/json" }), "adapter_config.json");
    form.set("adapter_model.safetensors", new Blob([files.safetensors as Uint8Array<ArrayBuffer>]), "adapter_model.safetensors");
    return ok(await api("/v1/adapters", { body: form }), 201);
  };

  beforeAll(async () => {
    stack = await startEdgeStack({ tenant: "e2e", key: KEY });
    base = stack.url;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("uploads three adapters of different ranks, completes with a weighted mix, and mix {a:1,b:1} ≡ cat(a,b)", async () => {
    const model = await ok(await api(`/v1/models/${MODEL}`));
    const manifest = model.manifest as ModelManifest;
    const make = (seed: number, rank: number) => randomAdapterFor(manifest, seed, rank);
    const [ad, bd, cd] = [make(101, 2), make(202, 4), make(303, 8)];
    const a = await upload("e2e-a", ad);
    const b = await upload("e2e-b", bd);
    const c = await upload("e2e-c", cd);
    expect([a.rank, b.rank, c.rank]).toEqual([2, 4, 8]);

    const listed = await ok(await api("/v1/adapters?owner=me&sort=name"));
    expect(listed.data.map((x: { name: string }) => x.name)).toEqual(["e2e-a", "e2e-b", "e2e-c"]);

    // Weighted mix, non-stream then stream: same seed and greedy decoding → same text.
    const mix = [
      { id: a.id, weight: 0.5 },
      { id: "e2e/e2e-b@1.0.0", weight: 1 },
      { id: c.id, weight: -0.3 },
    ];
    const request = { model: MODEL, prompt: "The edge", max_tokens: 8, temperature: 0, seed: 1, adapters: mix };
    const plain = await ok(await api("/v1/completions", { json: request }));
    expect(plain.object).toBe("text_completion");
    expect(plain.usage.completion_tokens).toBeGreaterThan(0);
    const streamed = await api("/v1/completions", { json: { ...request, stream: true } });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get("content-type")).toContain("text/event-stream");
    const events = (await streamed.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events[events.length - 1]).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.some((ch) => ch.error)).toBe(false);
    expect(chunks.map((ch) => ch.choices[0].text).join("")).toBe(plain.choices[0].text);

    // The mix differs from the base model (the adapters do something).
    const baseOut = await ok(await api("/v1/completions", { json: { ...request, adapters: [], echo: true, logprobs: 0, max_tokens: 1 } }));

    // mix {a:1, b:1} ≡ uploaded cat(a, b).
    const cat = mixAsAdapter(composeMix([{ adapter: ad, weight: 1 }, { adapter: bd, weight: 1 }]), {
      baseModel: MODEL,
      fanInFanOut: ad.fanInFanOut,
    });
    const ab = await upload("e2e-cat-ab", cat);
    expect(ab.rank).toBe(6);
    const probe = { model: MODEL, prompt: "LoRA mixes at the edge", max_tokens: 1, temperature: 0, echo: true, logprobs: 0 };
    const viaMix = await ok(await api("/v1/completions", { json: { ...probe, adapters: [{ id: a.id, weight: 1 }, { id: b.id, weight: 1 }] } }));
    const viaCat = await ok(await api("/v1/completions", { json: { ...probe, adapters: [{ id: ab.id, weight: 1 }] } }));
    const lpMix = viaMix.choices[0].logprobs;
    const lpCat = viaCat.choices[0].logprobs;
    expect(lpMix.token_ids).toEqual(lpCat.token_ids);
    expect(lpMix.token_logprobs.length).toBeGreaterThan(3);
    let maxDiff = 0;
    lpMix.token_logprobs.forEach((v: number | null, i: number) => {
      const w = lpCat.token_logprobs[i];
      if (v === null || w === null) expect(v).toBe(w);
      else maxDiff = Math.max(maxDiff, Math.abs(v - w));
    });
    expect(maxDiff).toBeLessThan(1e-3);
    // …and is not trivially equal to the base model.
    const viaBase = await ok(await api("/v1/completions", { json: { ...probe, adapters: [] } }));
    const baseDiff = Math.max(
      ...viaBase.choices[0].logprobs.token_logprobs.map((v: number | null, i: number) =>
        v === null ? 0 : Math.abs(v - lpMix.token_logprobs[i]),
      ),
    );
    expect(baseDiff).toBeGreaterThan(1e-3);
    console.info(`edge e2e: max |Δlogprob| mix{a:1,b:1} vs cat(a,b) = ${maxDiff.toExponential(2)}; vs base = ${baseDiff.toExponential(2)} over ${lpMix.token_logprobs.length} tokens`);
    expect(baseOut.choices[0].logprobs.token_logprobs.length).toBeGreaterThan(0);

    // A saved composition {a:1, b:1} baked with the lossless linear strategy serves the same logprobs.
    const comp = await ok(
      await api("/v1/compositions", { json: { name: "ab", adapters: [{ id: a.id, weight: 1 }, { id: b.id, weight: 1 }] } }),
      201,
    );
    const viaComp = await ok(await api("/v1/completions", { json: { ...probe, composition: comp.id } }));
    expect(viaComp.choices[0].logprobs.token_logprobs).toEqual(lpMix.token_logprobs);
    const baked = await ok(await api(`/v1/compositions/${comp.id}/bake`, { json: { strategy: "linear", name: "ab-linear" } }), 201);
    expect(baked.rank).toBe(6);
    const viaBaked = await ok(await api("/v1/completions", { json: { ...probe, adapters: [{ id: baked.id, weight: 1 }] } }));
    let bakedDiff = 0;
    viaBaked.choices[0].logprobs.token_logprobs.forEach((v: number | null, i: number) => {
      if (v !== null) bakedDiff = Math.max(bakedDiff, Math.abs(v - lpMix.token_logprobs[i]));
    });
    expect(bakedDiff).toBeLessThan(1e-3);
    console.info(`edge e2e: max |Δlogprob| baked linear(a+b) vs mix = ${bakedDiff.toExponential(2)}`);
    // The runner baked it and measured it on the model: lossless linear ⇒ the same distribution everywhere.
    expect(baked.bake.fidelity.kl_mean).toBeLessThan(1e-6);
    expect(baked.bake.fidelity.top1_agreement).toBe(1);
    expect(baked.bake.fidelity.positions).toBeGreaterThan(0);
    // A lossy dense bake (ties, rank 1) is measured as lossy, and the record keeps the report.
    const tied = await ok(await api(`/v1/compositions/${comp.id}/bake`, { json: { strategy: "ties", density: 0.3, rank: 1, name: "ab-ties" } }), 201);
    expect(tied.bake.total_discarded_energy).toBeGreaterThan(0);
    expect(tied.bake.fidelity.kl_mean).toBeGreaterThan(baked.bake.fidelity.kl_mean);
    expect((await ok(await api(`/v1/adapters/${tied.id}`))).bake).toEqual(tied.bake);
    console.info(
      `edge e2e: bake fidelity linear KL ${baked.bake.fidelity.kl_mean.toExponential(2)} top-1 ${baked.bake.fidelity.top1_agreement}; ties(0.3, r1) KL ${tied.bake.fidelity.kl_mean.toExponential(2)} top-1 ${tied.bake.fidelity.top1_agreement.toFixed(3)}`,
    );

    // Usage was recorded for the tenant.
    const usage = await settledUsage();
    expect(usage.totals.requests).toBeGreaterThanOrEqual(6);
    expect(usage.totals.completion_tokens).toBeGreaterThan(0);
  });

  it("daily budget under wrangler dev: 12 concurrent requests against 100 tokens → 5 run, 7 get 429, billed exactly what the responses report; a dropped stream is billed once", async () => {
    const key = "le_e2e_budget_" + "b".repeat(28);
    const tenant = await fetch(`${base}/v1/tenants/e2e-budget`, {
      method: "PUT",
      headers: { authorization: `Bearer ${stack!.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ api_key: key, tokens_per_day: 100 }),
    });
    expect(tenant.status).toBe(201);
    const call = (json: unknown, signal?: AbortSignal) =>
      fetch(`${base}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(json), signal });
    /** Today's usage once every reservation is settled. */
    const settledToday = async () => (await settledUsage(key)).data[0];
    // The byte tokenizer: "hello world" is 11 tokens + BOS; 8 tokens forced: each reserves and is billed exactly 20.
    const json = { model: MODEL, prompt: "hello world", max_tokens: 8, ignore_eos: true, temperature: 0 };
    const answers = await Promise.all(Array.from({ length: 12 }, async () => {
      const res = await call(json);
      return { status: res.status, body: (await res.json()) as { usage: { total_tokens: number } } };
    }));
    const served = answers.filter((a) => a.status === 200);
    expect(served).toHaveLength(5);
    expect(answers.filter((a) => a.status === 429)).toHaveLength(7);
    const reported = served.reduce((t, a) => t + a.body.usage.total_tokens, 0);
    expect(reported).toBe(100);
    expect(await settledToday()).toMatchObject({ requests: 5, total_tokens: reported, reserved_tokens: 0 });

    // A fresh budget for the stream: the limit raised, then a client drops its stream after 2 events.
    await fetch(`${base}/v1/tenants/e2e-budget`, {
      method: "PUT",
      headers: { authorization: `Bearer ${stack!.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ tokens_per_day: 10_000 }),
    });
    const abort = new AbortController();
    const streamed = await call({ ...json, max_tokens: 400, stream: true }, abort.signal);
    expect(streamed.status).toBe(200);
    const reader = streamed.body!.getReader();
    let text = "";
    while ((text.match(/\n\n/g) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    abort.abort();
    await reader.cancel().catch(() => {});
    const day = await settledToday();
    expect(day.requests).toBe(6);
    expect(day.prompt_tokens).toBe(5 * 12 + 12);
    // Billed for what the runner sampled before the edge saw the client go: at least what arrived, at most max_tokens.
    expect(day.completion_tokens - 5 * 8).toBeGreaterThanOrEqual(2);
    expect(day.completion_tokens - 5 * 8).toBeLessThanOrEqual(400);
  });
});
