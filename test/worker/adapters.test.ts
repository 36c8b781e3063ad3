import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { sha256Hex } from "../../workers/src/util/crypto.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners, MODEL } from "./fake-runner.js";
import { call, callJson, expectError, failAdapterInserts, newTenant, r2Keys, rowCount, uploadAdapter } from "./helpers.js";

const runners = useFakeRunners();

const adapterCount = () => rowCount("adapters");

describe("POST /v1/adapters", () => {
  it("stores a valid PEFT adapter and returns its record", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    const r = await uploadAdapter(t.key, uploadForm(files, { name: "pirate", tags: "Fun, style", description: "arr" }));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      name: "pirate",
      version: "1.0.0",
      owner: "acme",
      ref: "acme/pirate@1.0.0",
      base_model: MODEL,
      rank: 4,
      alpha: 8,
      scale: 2,
      targets: ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"],
      dtype: "F32",
      size_bytes: files.weights.byteLength,
      sha256: await sha256Hex(files.weights as Uint8Array<ArrayBuffer>),
      visibility: "private",
      description: "arr",
      tags: ["fun", "style"],
      downloads: 0,
    });
    expect(r.body.id).toMatch(/^ad_/);
    expect(await r2Keys()).toEqual([`adapters/sha256/${r.body.sha256}.safetensors`]);
  });

  it("409 when name@version already exists; a new version is fine", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    expect((await uploadAdapter(t.key, uploadForm(files, { name: "p" }))).status).toBe(201);
    expectError(await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "p" })), 409, "conflict_error");
    expect((await uploadAdapter(t.key, uploadForm(files, { name: "p", version: "1.1.0" }))).status).toBe(201);
    // The same name in another tenant is independent.
    const u = await newTenant("other");
    expect((await uploadAdapter(u.key, uploadForm(files, { name: "p" }))).status).toBe(201);
    expect(await adapterCount()).toBe(3);
    expect(await r2Keys()).toHaveLength(1); // content-addressed: identical bytes share one blob
  });

  it("two concurrent uploads of the same name@version: one 201, one 409, one blob", async () => {
    const t = await newTenant("acme");
    const [r1, r2] = await Promise.all([
      uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" })),
      uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "p" })),
    ]);
    expect([r1.status, r2.status].sort()).toEqual([201, 409]);
    expect(await adapterCount()).toBe(1);
    const winner = r1.status === 201 ? r1.body : r2.body;
    expect(await r2Keys()).toEqual([`adapters/sha256/${winner.sha256}.safetensors`]);
  });

  it("400 for missing parts and bad fields", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    expectError(await uploadAdapter(t.key, uploadForm({ ...files, config: null }, { name: "p" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm({ ...files, weights: null }, { name: "p" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm(files, {})), 400);
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "bad name" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "p", version: "1.0" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "p", visibility: "secret" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "p", tags: "ok,no way" })), 400);
    expectError(await uploadAdapter(t.key, uploadForm({ ...files, config: "{not json" }, { name: "p" })), 400);
    expectError(await callJson("/v1/adapters", { key: t.key, json: { name: "p" } }), 400);
    expect(await adapterCount()).toBe(0);
    expect(await r2Keys()).toEqual([]);
  });

  it("400 for a corrupt safetensors file, 422 for unsupported or incompatible adapters", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    const truncated = files.weights.slice(0, files.weights.length - 10);
    const bad = await uploadAdapter(t.key, uploadForm({ ...files, weights: truncated }, { name: "p" }));
    expectError(bad, 400, "invalid_request_error");
    // DoRA is refused (well-formed but unsupported).
    const dora = JSON.stringify({ ...JSON.parse(files.config), use_dora: true });
    expectError(await uploadAdapter(t.key, uploadForm({ ...files, config: dora }, { name: "p" })), 422);
    // Rank above the model's cap (16).
    expectError(await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 32)), { name: "p" })), 422);
    // A module the model does not have.
    const wrong = peftFiles(tinyAdapter(1, 4, ["model.layers.0.self_attn.k_proj"]));
    const r = await uploadAdapter(t.key, uploadForm(wrong, { name: "p" }));
    expectError(r, 422, "unprocessable_entity_error");
    expect(r.body.error.message).toContain("k_proj");
    // Unknown base model.
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "p", base_model: "gpt-9" })), 422);
    expect(await adapterCount()).toBe(0);
    expect(await r2Keys()).toEqual([]);
  });

  it("413 when the weights exceed MAX_ADAPTER_BYTES (1 MiB in the tests)", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    const big = new Uint8Array(Number(env.MAX_ADAPTER_BYTES) + 1);
    expectError(await uploadAdapter(t.key, uploadForm({ ...files, weights: big }, { name: "p" })), 413);
    expect(await r2Keys()).toEqual([]);
  });

  it("413 for a chunked body (no Content-Length) over the limit, without reading it to its end", async () => {
    const t = await newTenant("acme");
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close(); // 64 MiB; the limit is ~2 MiB in the tests
        else controller.enqueue(chunk);
      },
    });
    const r = await callJson("/v1/adapters", {
      key: t.key,
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: endless,
    });
    expectError(r, 413, "payload_too_large_error");
    expect(pulled).toBeLessThan(100);
    expect(await r2Keys()).toEqual([]);
  });

  it("is atomic when the D1 insert fails: no row and no orphan blob", async () => {
    const t = await newTenant("acme");
    failAdapterInserts();
    const r = await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }));
    expectError(r, 503, "service_unavailable_error");
    vi.mocked(env.DB.prepare).mockRestore();
    expect(await adapterCount()).toBe(0);
    expect(await r2Keys()).toEqual([]);
  });

  it("keeps a shared blob when a D1 failure hits a second upload of the same bytes", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    expect((await uploadAdapter(t.key, uploadForm(files, { name: "p" }))).status).toBe(201);
    failAdapterInserts();
    expectError(await uploadAdapter(t.key, uploadForm(files, { name: "q" })), 503);
    vi.mocked(env.DB.prepare).mockRestore();
    expect(await adapterCount()).toBe(1);
    expect(await r2Keys()).toHaveLength(1);
    const dl = await call(`/v1/adapters/${encodeURIComponent("acme/p@1.0.0")}/download`, { key: t.key });
    expect(dl.status).toBe(200);
    expect(new Uint8Array(await dl.arrayBuffer())).toEqual(files.weights);
  });

  it("is atomic when the R2 put fails: no row", async () => {
    const t = await newTenant("acme");
    vi.spyOn(env.ADAPTERS, "put").mockRejectedValue(new Error("R2 injected failure"));
    expectError(await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" })), 503);
    vi.mocked(env.ADAPTERS.put).mockRestore();
    expect(await adapterCount()).toBe(0);
    expect(await r2Keys()).toEqual([]);
  });

  it("validates against the manifest stored in D1 while every runner is down", async () => {
    const t = await newTenant("acme");
    // One successful catalogue fetch stores the manifest...
    expect((await callJson("/v1/models", { key: t.key })).body.data).toHaveLength(1);
    // ...then all runners go down and the cache expires.
    for (const r of Object.keys(runners.behaviour)) runners.behaviour[r] = "down";
    const { invalidateCatalog } = await import("../../workers/src/runners/catalog.js");
    invalidateCatalog();
    expect((await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }))).status).toBe(201);
    // An unknown model with no runner reachable cannot be validated: 503.
    expectError(await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "q", base_model: "x" })), 503);
  });
});

describe("reading adapters", () => {
  it("gets by id and by owner/name@version; downloads count", async () => {
    const t = await newTenant("acme");
    const files = peftFiles(tinyAdapter(1, 4));
    const up = await uploadAdapter(t.key, uploadForm(files, { name: "p" }));
    const byId = await callJson(`/v1/adapters/${up.body.id}`, { key: t.key });
    expect(byId.body).toEqual(up.body);
    const byRef = await callJson(`/v1/adapters/${encodeURIComponent("acme/p@1.0.0")}`, { key: t.key });
    expect(byRef.body.id).toBe(up.body.id);
    const rawSlash = await callJson("/v1/adapters/acme/p@1.0.0", { key: t.key });
    expect(rawSlash.body.id).toBe(up.body.id);
    expect((await call("/v1/adapters/acme/p@1.0.0/download", { key: t.key })).status).toBe(200);
    const config = await callJson("/v1/adapters/acme/p@1.0.0/config", { key: t.key });
    expect(config.body).toEqual(JSON.parse(files.config));
    const latest = await callJson(`/v1/adapters/${encodeURIComponent("acme/p")}`, { key: t.key });
    expect(latest.body.id).toBe(up.body.id);
    const dl = await call(`/v1/adapters/${up.body.id}/download`, { key: t.key });
    expect(dl.status).toBe(200);
    expect(dl.headers.get("x-loraedge-sha256")).toBe(up.body.sha256);
    expect(new Uint8Array(await dl.arrayBuffer())).toEqual(files.weights);
    expect((await callJson(`/v1/adapters/${up.body.id}`, { key: t.key })).body.downloads).toBe(2);
    expectError(await callJson("/v1/adapters/ad_nope", { key: t.key }), 404);
  });

  it("isolates tenants: another tenant's private adapter is 404 everywhere", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    const priv = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "secret" }));
    const pub = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "open", visibility: "public" }));
    for (const path of [`/v1/adapters/${priv.body.id}`, `/v1/adapters/${priv.body.id}/download`, `/v1/adapters/${priv.body.id}/config`, `/v1/adapters/${encodeURIComponent("a/secret@1.0.0")}`]) {
      expectError(await callJson(path, { key: b.key }), 404, "not_found_error");
    }
    expectError(await callJson(`/v1/adapters/${priv.body.id}`, { key: b.key, method: "PATCH", json: { visibility: "public" } }), 404);
    expectError(await callJson(`/v1/adapters/${priv.body.id}`, { key: b.key, method: "DELETE" }), 404);
    expect((await callJson(`/v1/adapters/${pub.body.id}`, { key: b.key })).status).toBe(200);
    expectError(await callJson(`/v1/adapters/${pub.body.id}`, { key: b.key, method: "PATCH", json: { description: "x" } }), 403);
    expectError(await callJson(`/v1/adapters/${pub.body.id}`, { key: b.key, method: "DELETE" }), 403);
    const list = await callJson("/v1/adapters", { key: b.key });
    expect(list.body.data.map((x: any) => x.name)).toEqual(["open"]);
  });

  it("lists with filters, sorts and cursor pagination", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    const names = ["delta", "alpha", "echo", "charlie", "bravo"];
    for (const [i, name] of names.entries()) {
      const r = await uploadAdapter(
        a.key,
        uploadForm(peftFiles(tinyAdapter(10 + i, 2)), {
          name,
          visibility: i % 2 === 0 ? "public" : "private",
          tags: i < 2 ? "style" : "task",
          description: name === "echo" ? "repeats what you say" : "",
        }),
      );
      expect(r.status).toBe(201);
    }
    await uploadAdapter(b.key, uploadForm(peftFiles(tinyAdapter(20, 2)), { name: "mine" }));
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await callJson(`/v1/adapters?sort=name&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { key: b.key });
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((x: any) => x.name));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual(["bravo", "delta", "echo", "mine"]);
    const recent = await callJson("/v1/adapters?sort=recent", { key: a.key });
    expect(recent.body.data.map((x: any) => x.name)).toEqual([...names].reverse());
    const mine = await callJson("/v1/adapters?owner=me", { key: b.key });
    expect(mine.body.data.map((x: any) => x.name)).toEqual(["mine"]);
    const tagged = await callJson("/v1/adapters?tag=style&sort=name", { key: a.key });
    expect(tagged.body.data.map((x: any) => x.name)).toEqual(["alpha", "delta"]);
    const q = await callJson("/v1/adapters?q=repeats", { key: b.key });
    expect(q.body.data.map((x: any) => x.name)).toEqual(["echo"]);
    const byModel = await callJson("/v1/adapters?base_model=other", { key: a.key });
    expect(byModel.body.data).toEqual([]);
    // Downloads sort.
    await call(`/v1/adapters/${encodeURIComponent("a/echo@1.0.0")}/download`, { key: a.key });
    await call(`/v1/adapters/${encodeURIComponent("a/echo@1.0.0")}/download`, { key: a.key });
    await call(`/v1/adapters/${encodeURIComponent("a/bravo@1.0.0")}/download`, { key: a.key });
    const pop = await callJson("/v1/adapters?sort=downloads&limit=2", { key: a.key });
    expect(pop.body.data.map((x: any) => x.name)).toEqual(["echo", "bravo"]);
    const pop2 = await callJson(`/v1/adapters?sort=downloads&limit=2&cursor=${pop.body.next_cursor}`, { key: a.key });
    expect(pop2.body.data).toHaveLength(2);
    expect(pop2.body.data.map((x: any) => x.name)).not.toContain("echo");
    expectError(await callJson("/v1/adapters?cursor=garbage", { key: a.key }), 400);
    expectError(await callJson(`/v1/adapters?sort=name&cursor=${pop.body.next_cursor}`, { key: a.key }), 400);
    expectError(await callJson("/v1/adapters?limit=1000", { key: a.key }), 400);
  });
});

describe("visibility filter", () => {
  it("visibility=public lists public ones; visibility=private only the caller's own private ones", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "a-pub", visibility: "public" }));
    await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 2)), { name: "a-priv" }));
    await uploadAdapter(b.key, uploadForm(peftFiles(tinyAdapter(3, 2)), { name: "b-priv" }));
    const names = async (query: string, key: string) => (await callJson(`/v1/adapters?sort=name&${query}`, { key })).body.data.map((x: any) => x.name);
    expect(await names("visibility=public", b.key)).toEqual(["a-pub"]);
    expect(await names("visibility=private", b.key)).toEqual(["b-priv"]);
    expect(await names("visibility=private", a.key)).toEqual(["a-priv"]);
    expect(await names("", a.key)).toEqual(["a-priv", "a-pub"]);
    expectError(await callJson("/v1/adapters?visibility=secret", { key: a.key }), 400);
  });
});

describe("tag filter", () => {
  it("matches the tag exactly: '_' in a tag is not a LIKE wildcard", async () => {
    const a = await newTenant("a");
    await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "plain", tags: "abc" }));
    await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "under", tags: "a_c" }));
    const tagged = await callJson("/v1/adapters?tag=a_c", { key: a.key });
    expect(tagged.status).toBe(200);
    expect(tagged.body.data.map((x: any) => x.name)).toEqual(["under"]);
  });
});

describe("changing adapters", () => {
  it("PATCH updates visibility, description and tags (owner only)", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    const up = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }));
    const r = await callJson(`/v1/adapters/${up.body.id}`, {
      key: a.key,
      method: "PATCH",
      json: { visibility: "public", description: "now public", tags: ["x", "y"] },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ visibility: "public", description: "now public", tags: ["x", "y"] });
    expect((await callJson(`/v1/adapters/${up.body.id}`, { key: b.key })).body.tags).toEqual(["x", "y"]);
    expectError(await callJson(`/v1/adapters/${up.body.id}`, { key: a.key, method: "PATCH", json: { name: "z" } }), 400);
    expectError(await callJson(`/v1/adapters/${up.body.id}`, { key: a.key, method: "PATCH", json: { tags: "bad tag" } }), 400);
  });

  it("DELETE removes the row and the unreferenced blob", async () => {
    const a = await newTenant("a");
    const up = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }));
    const r = await callJson(`/v1/adapters/${up.body.id}`, { key: a.key, method: "DELETE" });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: up.body.id, deleted: true, deleted_compositions: [] });
    expectError(await callJson(`/v1/adapters/${up.body.id}`, { key: a.key }), 404);
    expect(await r2Keys()).toEqual([]);
  });

  it("DELETE whose blob clean-up fails still answers 200: the adapter is gone, the blob is logged as an orphan", async () => {
    const a = await newTenant("a");
    const up = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }));
    vi.spyOn(env.ADAPTERS, "delete").mockRejectedValueOnce(new Error("R2 unavailable"));
    const r = await callJson(`/v1/adapters/${up.body.id}`, { key: a.key, method: "DELETE" });
    expect(r.status).toBe(200);
    expectError(await callJson(`/v1/adapters/${up.body.id}`, { key: a.key }), 404);
    expect(await r2Keys()).toHaveLength(1); // the orphan stays until a later clean-up
  });
});
