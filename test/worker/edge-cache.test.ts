// The edge's hot path: per-isolate caches of API key → tenant and adapter records (bounded by
// EDGE_CACHE_TTL_MS, 200 ms in these tests) and of the runners' catalogue (refreshed ahead), one
// D1 round trip before the runner, the usage written after the response, and the Server-Timing
// that shows where a request's time went.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import { createDb } from "../../workers/src/db/client.js";
import { setLogLevel } from "../../workers/src/logging/log.js";
import type { Env } from "../../workers/src/env.js";
import worker from "../../workers/src/index.js";
import { CATALOG_TTL_MS, invalidateCatalog, modelCatalog } from "../../workers/src/runners/catalog.js";
import { TtlCache } from "../../workers/src/util/ttl-cache.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners, MANIFEST, MODEL, RUNNERS, useFakeRunners } from "./fake-runner.js";
import { callJson, callRaw, countD1Trips, expectError, newTenant, uploadAdapter } from "./helpers.js";

const TTL_MS = Number(env.EDGE_CACHE_TTL_MS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const runners = useFakeRunners();

describe("TtlCache", () => {
  it("returns a value until its TTL ran out, stores nothing with TTL 0, and drops the oldest beyond its size", () => {
    const cache = new TtlCache<string, number>(2);
    cache.set("a", 1, 100, 1000);
    expect(cache.get("a", 1099)).toBe(1);
    expect(cache.get("a", 1100)).toBeUndefined();
    cache.set("off", 1, 0, 1000);
    expect(cache.get("off", 1000)).toBeUndefined();
    cache.set("a", 1, 100, 1000);
    cache.set("b", 2, 100, 1000);
    cache.set("c", 3, 100, 1000);
    expect([cache.get("a", 1000), cache.get("b", 1000), cache.get("c", 1000)]).toEqual([undefined, 2, 3]);
    expect(cache.size).toBe(2);
  });
});

describe("TtlCache.getOrLoad", () => {
  it("loads a miss once stored, never stores a miss, and a clear() during a load keeps what it loaded out", async () => {
    const cache = new TtlCache<string, string>(10);
    expect(await cache.getOrLoad("k", 100, async () => "v1", 0)).toBe("v1");
    expect(await cache.getOrLoad("k", 100, async () => "v2", 50)).toBe("v1");
    expect(await cache.getOrLoad("none", 100, async () => null, 0)).toBeNull();
    expect(cache.get("none", 0)).toBeUndefined();
    // A lookup that began before a revocation (clear) answers its caller but is not cached.
    let finish!: (v: string) => void;
    const loading = cache.getOrLoad("r", 100, () => new Promise<string>((r) => (finish = r)), 0);
    cache.clear();
    finish("revoked-record");
    expect(await loading).toBe("revoked-record");
    expect(cache.get("r", 0)).toBeUndefined();
  });
});

describe("API key cache", () => {
  it("a key revoked by another isolate stops working within EDGE_CACHE_TTL_MS; revoked here, at once", async () => {
    expect(TTL_MS).toBe(200);
    const a = await newTenant("a");
    const second = await callJson("/v1/keys", { key: a.key, method: "POST" });
    expect(second.status).toBe(201);
    expect((await callJson("/v1/usage", { key: a.key })).status).toBe(200); // cached now
    // Another isolate revokes it (straight in D1): this isolate may still accept it for at most the TTL.
    const keyId = (await callJson("/v1/keys", { key: second.body.key })).body.data.find((k: any) => k.id !== second.body.id).id;
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), keyId).run();
    await sleep(TTL_MS + 50);
    expectError(await callJson("/v1/usage", { key: a.key }), 401);
    // Revoked through this isolate: refused on the next request.
    expect((await callJson("/v1/usage", { key: second.body.key })).status).toBe(200);
    expect((await callJson(`/v1/keys/${second.body.id}`, { key: second.body.key, method: "DELETE" })).status).toBe(200);
    expectError(await callJson("/v1/usage", { key: second.body.key }), 401);
  });

  it("a tenant's new limits apply at once in the isolate that changed them", async () => {
    const a = await newTenant("a");
    expect((await callJson("/v1/usage", { key: a.key })).body.limits.tokens_per_day).toBe(1_000_000);
    const put = await callJson("/v1/tenants/a", { key: "test-admin-token", method: "PUT", json: { tokens_per_day: 3 } });
    expect(put.status).toBe(200);
    expect((await callJson("/v1/usage", { key: a.key })).body.limits.tokens_per_day).toBe(3);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", max_tokens: 1 } }), 429);
  });
});

describe("adapter record cache", () => {
  it("a public adapter made private here is refused to others at once; made private elsewhere, within the TTL", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x", visibility: "public" }))).body;
    const y = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 2)), { name: "y", visibility: "public" }))).body;
    const run = (id: string) => callJson("/v1/completions", { key: b.key, json: { model: MODEL, prompt: "Hi", adapters: [{ id, weight: 1 }] } });
    expect((await run(x.id)).status).toBe(200);
    expect((await run(y.id)).status).toBe(200);
    expect((await callJson(`/v1/adapters/${x.id}`, { key: a.key, method: "PATCH", json: { visibility: "private" } })).status).toBe(200);
    expectError(await run(x.id), 404);
    await env.DB.prepare("UPDATE adapters SET visibility = 'private' WHERE id = ?").bind(y.id).run();
    await sleep(TTL_MS + 50);
    expectError(await run(y.id), 404);
  });

  it("`owner/name` (latest) follows a new upload at once", async () => {
    const a = await newTenant("a");
    await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }));
    const run = () => callJson("/v1/completions", { key: a.key, json: { model: "a/x", prompt: "Hi" } });
    expect((await run()).status).toBe(200);
    const v2 = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(3, 2)), { name: "x", version: "2.0.0" }))).body;
    expect((await run()).status).toBe(200);
    expect(runners.completions.at(-1)!.body.adapters.map((e) => e.id)).toEqual([v2.id]);
  });
});

describe("hot path", () => {
  /** D1 round trips (countD1Trips); `holdUsageWrite` keeps the after-response batch (usage, uses, the batch's id: 3 statements) waiting until it is set false. */
  function countD1() {
    const state = { trips: [] as string[], holdUsageWrite: true };
    state.trips = countD1Trips((statements) => statements.length === 3 && state.holdUsageWrite);
    return state;
  }

  it("a warm completion with adapters: one D1 round trip before the runner; usage and uses in one more, which the response does not wait for", async () => {
    const a = await newTenant("a");
    const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
    const json = { model: MODEL, prompt: "Hi", max_tokens: 2, adapters: [{ id: x.id, weight: 1 }, { id: "a/x@1.0.0", weight: 0.5 }] };
    expect((await callJson("/v1/completions", { key: a.key, json })).status).toBe(200); // warms key, adapter and catalog caches
    const d1 = countD1();
    const res = await callRaw("/v1/completions", { key: a.key, json });
    expect(res.status).toBe(200);
    await res.arrayBuffer(); // the whole response arrived while the usage write is still held
    // Rate window, its pruning, the day's row, the budget reservation; then usage settlement, the adapter's use count and the batch's id.
    expect(d1.trips).toEqual(["batch of 4", "batch of 3"]);
    d1.holdUsageWrite = false;
    await afterResponseSettled();
    vi.restoreAllMocks();
    expect((await callJson(`/v1/adapters/${x.id}`, { key: a.key })).body.uses).toBe(2);
    const usage = await callJson("/v1/usage", { key: a.key });
    expect(usage.body.data[0]).toMatchObject({ requests: 2, reserved_tokens: 0 });
  });

  it("a refresh with unchanged manifests makes no D1 write; a changed manifest is stored", async () => {
    runners.restore();
    const served = [MANIFEST];
    installFakeRunners(served);
    const db = createDb(env.DB);
    const t0 = Date.now();
    await modelCatalog(env, db, { now: t0 }); // stores the manifest
    const d1 = countD1();
    const work: Promise<unknown>[] = [];
    await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2, inBackground: (p) => void work.push(p) });
    await Promise.all(work); // a refresh ahead, as steady traffic starts every CATALOG_TTL_MS / 2
    await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 + 1, force: true });
    expect(d1.trips).toEqual([]);
    served[0] = { ...MANIFEST, maxRank: MANIFEST.maxRank + 1 }; // the runners now serve another manifest
    await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 + 2, force: true });
    expect(d1.trips).toEqual(["batch of 1"]);
    const row = await env.DB.prepare("SELECT manifest FROM models WHERE id = ?").bind(MANIFEST.id).first<{ manifest: string }>();
    expect(JSON.parse(row!.manifest).maxRank).toBe(MANIFEST.maxRank + 1);
  });

  it("a background refresh that fails is logged (one warn line), not swallowed", async () => {
    const db = createDb(env.DB);
    const t0 = Date.now();
    await modelCatalog(env, db, { now: t0 });
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const work: Promise<unknown>[] = [];
    setLogLevel("warn");
    try {
      // A deployment that lost RUNNER_SECRET: the refresh rejects before asking any runner.
      const broken = { ...env, RUNNER_SECRET: undefined } as Env;
      await modelCatalog(broken, db, { now: t0 + CATALOG_TTL_MS / 2, inBackground: (p) => void work.push(p) });
      await Promise.all(work); // handled: the waitUntil promise resolves
    } finally {
      setLogLevel(env.LOG_LEVEL);
    }
    expect(work).toHaveLength(1);
    const lines = warn.mock.calls.map(([line]) => JSON.parse(String(line)));
    expect(lines).toEqual([expect.objectContaining({ level: "warn", msg: "catalogue refresh failed", error: expect.stringContaining("RUNNER_SECRET") })]);
  });
});

describe("runner catalogue", () => {
  /** GET /internal/v1/models calls the fake runners received so far. */
  const modelListCalls = () =>
    vi.mocked(globalThis.fetch).mock.calls.filter(([input]) => String(input instanceof Request ? input.url : input).endsWith(RUNNER_PATHS.models)).length;

  it("past half its TTL it is answered at once and refreshed behind the response, one refresh at a time; never served past its TTL", async () => {
    const db = createDb(env.DB);
    const t0 = Date.now();
    const first = await modelCatalog(env, db, { now: t0 });
    expect(modelListCalls()).toBe(RUNNERS.length);
    const work: Promise<unknown>[] = [];
    const inBackground = (p: Promise<unknown>) => void work.push(p);
    expect(await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 - 1, inBackground })).toBe(first);
    expect(work).toHaveLength(0);
    expect(await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2, inBackground })).toBe(first);
    expect(await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 + 1, inBackground })).toBe(first); // one refresh under way
    expect(work).toHaveLength(1);
    await Promise.all(work);
    expect(modelListCalls()).toBe(2 * RUNNERS.length);
    const refreshed = await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 + 2, inBackground });
    expect(refreshed).not.toBe(first);
    expect(refreshed.fetchedAt).toBe(t0 + CATALOG_TTL_MS / 2);
    expect([...refreshed.byRunner.keys()]).toEqual(RUNNERS);
    expect(work).toHaveLength(1);
    // Past its TTL the caller waits for a fresh one, as without refresh ahead.
    const late = await modelCatalog(env, db, { now: refreshed.fetchedAt + CATALOG_TTL_MS, inBackground });
    expect(late.fetchedAt).toBe(refreshed.fetchedAt + CATALOG_TTL_MS);
    expect(modelListCalls()).toBe(3 * RUNNERS.length);
    expect(work).toHaveLength(1);
  });

  it("a refresh that an invalidation overtook stores nothing: the next caller fetches anew", async () => {
    const db = createDb(env.DB);
    const t0 = Date.now();
    const first = await modelCatalog(env, db, { now: t0 });
    const work: Promise<unknown>[] = [];
    expect(await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2, inBackground: (p) => void work.push(p) })).toBe(first);
    invalidateCatalog(); // e.g. a runner came back while the refresh was under way
    await Promise.all(work);
    const next = await modelCatalog(env, db, { now: t0 + CATALOG_TTL_MS / 2 + 1 });
    expect(next.fetchedAt).toBe(t0 + CATALOG_TTL_MS / 2 + 1);
    expect(modelListCalls()).toBe(3 * RUNNERS.length);
  });
});

describe("Server-Timing", () => {
  it("a completion's answer times its stages: auth, plan, the gate (its D1 round trip), the runner call and the total", async () => {
    const a = await newTenant("a");
    const res = await callRaw("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", max_tokens: 2 } });
    expect(res.status).toBe(200);
    const entries = (res.headers.get("server-timing") ?? "").split(",").map((e) => e.trim());
    const names = entries.map((e) => e.split(";")[0]);
    expect(names.sort()).toEqual(["auth", "gate", "plan", "runner", "total"]);
    for (const e of entries) expect(e).toMatch(/^[a-z]+;dur=\d+(\.\d)?$/);
    // A request refused at auth has no later stage; every answer has its total.
    const refused = await callRaw("/v1/completions", { key: "le_wrong", json: { model: MODEL, prompt: "Hi" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("server-timing")).toMatch(/^auth;dur=\d+(\.\d)?,total;dur=\d+(\.\d)?$/);
  });
});

describe("request log", () => {
  it("a completion writes one log line (console lines cost ≈ 1 ms each under wrangler dev), with the routing in it", async () => {
    const a = await newTenant("a");
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => void lines.push(line));
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request("http://edge/v1/completions", {
        method: "POST",
        headers: { authorization: `Bearer ${a.key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: "Hi", max_tokens: 2 }),
      }),
      { ...env, LOG_LEVEL: "info" } as Env, // the tests' LOG_LEVEL is "silent"
      ctx,
    );
    expect(res.status).toBe(200);
    await res.text();
    await waitOnExecutionContext(ctx);
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: "info", msg: "request", method: "POST", path: "/v1/completions", status: 200, tenant: "a", model: MODEL, base_model: MODEL, adapters: 0, stream: false, runner_status: 200, failovers: [] });
    expect(RUNNERS).toContain(line.runner);
    expect(line.runner_label).toBe(res.headers.get("x-loraedge-runner"));
  });
});
