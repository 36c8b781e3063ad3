import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { deltaWeight } from "#core/lora/delta";
import { loadPeftAdapter } from "#core/peft/index";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners } from "./fake-runner.js";
import { call, callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";
import { env } from "cloudflare:workers";
import { ApiError } from "../../workers/src/errors/api-error.js";
import { bakeComposition } from "../../workers/src/compositions/bake-composition.js";
import { findOwnComposition } from "../../workers/src/compositions/queries.js";
import { createDb } from "../../workers/src/db/client.js";
import { findManifest } from "../../workers/src/runners/catalog.js";

beforeEach(() => {
  installFakeRunners();
});
afterEach(() => {
  vi.restoreAllMocks();
});

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

  it("refuses bakes beyond the isolate's budget: total adapter bytes (413), dense ΔW floats (422)", async () => {
    const { a, comp } = await setup();
    const db = createDb(env.DB);
    const full = (await findOwnComposition(db, a.id, comp.id))!;
    const manifest = (await findManifest(env, db, full.baseModel))!;
    const attempt = (strategy: "linear" | "ties", limits: { maxBytes: number; maxDenseFloats: number }) =>
      bakeComposition(db, env.ADAPTERS, a.id, full, { strategy, density: strategy === "ties" ? 0.5 : undefined }, manifest, 64, limits)
        .then(() => 200)
        .catch((e: unknown) => (e instanceof ApiError ? e.status : 500));
    const roomy = { maxBytes: 1 << 30, maxDenseFloats: 1 << 30 };
    expect(await attempt("linear", roomy)).toBe(200);
    expect(await attempt("ties", roomy)).toBe(200);
    expect(await attempt("linear", { ...roomy, maxBytes: 16 })).toBe(413);
    expect(await attempt("ties", { ...roomy, maxDenseFloats: 16 })).toBe(422);
    expect(await attempt("linear", { ...roomy, maxDenseFloats: 16 })).toBe(200); // low-rank path: no dense ΔW
  });
});
