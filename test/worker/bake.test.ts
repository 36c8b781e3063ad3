import { describe, expect, it } from "vitest";
import { deltaWeight } from "#core/lora/delta";
import { loadPeftAdapter } from "#core/peft/index";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners } from "./fake-runner.js";
import { call, callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";
import { env } from "cloudflare:workers";

const runners = useFakeRunners();

async function setup() {
  const a = await newTenant("a");
  const ax = tinyAdapter(1, 2);
  const ay = tinyAdapter(2, 4);
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(ax), { name: "x" }))).body;
  const y = (await uploadAdapter(a.key, uploadForm(peftFiles(ay), { name: "y", visibility: "public" }))).body;
  const comp = (
    await callJson("/v1/compositions", { key: a.key, json: { name: "c", adapters: [{ id: x.id, weight: 0.5 }, { id: y.id, weight: -2 }] } })
  ).body;
  return { a, ax, ay, x, y, comp };
}

describe("POST /v1/compositions/:id/bake", () => {
  it("linear bake stores an adapter whose ΔW equals Σ wᵢ·sᵢ·Bᵢ·Aᵢ", async () => {
    const { a, ax, ay, comp } = await setup();
    const r = await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "linear", name: "baked" } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ name: "baked", version: "1.0.0", owner: "a", rank: 6, tags: ["baked"] });
    expect(r.body.bake.strategy).toBe("linear");
    expect(r.body.bake.total_discarded_energy).toBeLessThan(1e-6);
    const dl = await call(`/v1/adapters/${r.body.id}/download`, { key: a.key });
    const { env } = await import("cloudflare:workers");
    const row = await env.DB.prepare("SELECT config_json FROM adapters WHERE id = ?").bind(r.body.id).first<{ config_json: string }>();
    const baked = loadPeftAdapter(JSON.parse(row!.config_json), new Uint8Array(await dl.arrayBuffer()));
    for (const module of ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]) {
      const got = deltaWeight(baked.modules.get(module)!);
      const dx = deltaWeight(ax.modules.get(module)!);
      const dy = deltaWeight(ay.modules.get(module)!);
      const maxAbs = Math.max(...dy.map(Math.abs));
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - (0.5 * dx[i]! - 2 * dy[i]!))).toBeLessThan(1e-4 * maxAbs);
    }
  });

  it("ties with density and rank; refuses bad options and existing versions", async () => {
    const { a, comp } = await setup();
    const r = await callJson(`/v1/compositions/${comp.id}/bake`, {
      key: a.key,
      json: { strategy: "ties", density: 0.5, rank: 2, name: "tied", version: "0.1.0", visibility: "public" },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ rank: 2, version: "0.1.0", visibility: "public" });
    expect(r.body.bake.total_discarded_energy).toBeGreaterThan(0);
    expectError(await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "ties", name: "t2" } }), 400);
    expectError(await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "magic", name: "t2" } }), 400);
    expectError(await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "linear", rank: 0, name: "t2" } }), 400);
    expectError(await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "linear", seed: 3, name: "t2" } }), 400);
    expectError(
      await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "ties", density: 0.5, name: "tied", version: "0.1.0" } }),
      409,
    );
    expectError(await callJson(`/v1/compositions/nope/bake`, { key: a.key, json: { strategy: "linear", name: "t3" } }), 404);
  });

  it("another tenant cannot bake the composition; an adapter made private by its owner is 404", async () => {
    const { a, y } = await setup();
    const b = await newTenant("b");
    const bc = (await callJson("/v1/compositions", { key: b.key, json: { name: "bc", adapters: [{ id: y.id, weight: 1 }] } })).body;
    expectError(await callJson(`/v1/compositions/${bc.id}/bake`, { key: a.key, json: { strategy: "linear", name: "z" } }), 404);
    await callJson(`/v1/adapters/${y.id}`, { key: a.key, method: "PATCH", json: { visibility: "private" } });
    expectError(await callJson(`/v1/compositions/${bc.id}/bake`, { key: b.key, json: { strategy: "linear", name: "z" } }), 404);
  });

  it("the bake runs on a runner serving the base model, with the composition's exact mix; its report and fidelity are stored and shown", async () => {
    const { a, x, y, comp } = await setup();
    const r = await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "svd", rank: 2, name: "on-runner" } });
    expect(r.status).toBe(201);
    expect(runners.bakes).toHaveLength(1);
    const sent = runners.bakes[0]!.body;
    expect(sent).toMatchObject({ model: comp.base_model, strategy: "svd", rank: 2 });
    expect(sent.adapters).toEqual([
      { id: x.id, sha256: x.sha256, weight: 0.5 },
      { id: y.id, sha256: y.sha256, weight: -2 },
    ]);
    // What the runner reported is stored with the adapter and shown on every read of it.
    expect(r.body.bake).toMatchObject({ strategy: "svd", rank: 2, density: null, seed: null });
    expect(r.body.bake.fidelity.kl_mean).toBe(r.body.bake.total_discarded_energy);
    const again = await callJson(`/v1/adapters/${r.body.id}`, { key: a.key });
    expect(again.body.bake).toEqual(r.body.bake);
    // Uploads carry no bake report.
    expect((await callJson(`/v1/adapters/${x.id}`, { key: a.key })).body.bake).toBeNull();
  });

  it("runner faults fail over; an adapter fetch failure fails the bake (nothing stored)", async () => {
    const { a, comp } = await setup();
    for (const r of Object.keys(runners.behaviour)) runners.behaviour[r] = "500";
    runners.behaviour["http://runner-b.test"] = "ok";
    const r = await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "linear", name: "after-failover" } });
    expect(r.status).toBe(201);
    expect(runners.bakes.map((b) => b.runner)).toEqual(["http://runner-b.test"]);
    // The blob of one adapter disappears: the runner answers adapter_unavailable, the bake fails, nothing is stored.
    const comp2 = (await callJson(`/v1/compositions/${comp.id}`, { key: a.key })).body;
    const victim = (await callJson(`/v1/adapters/${comp2.adapters[0].id}`, { key: a.key })).body;
    await env.ADAPTERS.delete(`adapters/sha256/${victim.sha256}.safetensors`);
    const failed = await callJson(`/v1/compositions/${comp.id}/bake`, { key: a.key, json: { strategy: "linear", name: "never-stored" } });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const n = await env.DB.prepare("SELECT count(*) AS n FROM adapters WHERE name = 'never-stored'").first<{ n: number }>();
    expect(n!.n).toBe(0);
  });
});
