// OpenAI conventions for adapters (issue #10 part 4): `model` may name an adapter or a saved
// composition; /v1/models lists them with `parent`, paginated; stream_options.include_usage.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners, useFakeRunners, MANIFEST, MODEL } from "./fake-runner.js";
import { call, callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";
import { createDb } from "../../workers/src/db/client.js";
import { resolveModelTarget } from "../../workers/src/inference/resolve-model.js";

const runners = useFakeRunners([MANIFEST, { ...MANIFEST, id: "other-base" }]);

async function setup() {
  const a = await newTenant("a");
  const b = await newTenant("b");
  const x1 = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x", version: "1.0.0" }))).body;
  // "owner/name" = the latest upload (by created_at, in ms): make 1.1.0 strictly later.
  await new Promise((r) => setTimeout(r, 5));
  const x2 = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(3, 2)), { name: "x", version: "1.1.0" }))).body;
  const y = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "y", visibility: "public" }))).body;
  const hidden = (await uploadAdapter(b.key, uploadForm(peftFiles(tinyAdapter(4, 2)), { name: "secret" }))).body;
  const comp = (await callJson("/v1/compositions", { key: a.key, json: { name: "blend", adapters: [{ id: x1.id, weight: 0.5 }, { id: y.id, weight: 2 }] } })).body;
  return { a, b, x1, x2, y, hidden, comp };
}

async function readSse(res: Response): Promise<any[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6))
    .filter((e) => e !== "[DONE]")
    .map((e) => JSON.parse(e));
}

describe("`model` names an adapter or a composition", () => {
  it("an adapter by owner/name@version, owner/name (latest) or id runs on its base at weight 1, named as asked", async () => {
    const { a, x1, x2 } = await setup();
    const cases: [string, { id: string; sha256: string }][] = [
      ["a/x@1.0.0", x1],
      ["a/x", x2],
      [x1.id, x1],
    ];
    for (const [model, adapter] of cases) {
      const r = await callJson("/v1/completions", { key: a.key, json: { model, prompt: "Hi" } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.model).toBe(model);
      const sent = runners.completions[runners.completions.length - 1]!.body;
      expect(sent.model).toBe(MODEL);
      expect(sent.adapters).toEqual([{ id: adapter.id, sha256: adapter.sha256, weight: 1 }]);
    }
    // The same output as the explicit `adapters` form: the runner receives the same request.
    await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: [{ id: "a/x@1.0.0", weight: 1 }] } });
    const [first, , , explicit] = runners.completions.map((c) => c.body);
    expect({ ...explicit, request_id: null }).toEqual({ ...first, request_id: null });
  });

  it("owner/name names the last upload even when two versions share a created_at millisecond", async () => {
    const { a, x2: uploaded } = await setup();
    // Same millisecond, and the later upload's id sorting first (ids are random: either order happens).
    const x2 = { ...uploaded, id: "ad_00000000000000000000" };
    await env.DB.prepare("UPDATE adapters SET id = ? WHERE id = ?").bind(x2.id, uploaded.id).run();
    await env.DB.prepare("UPDATE adapters SET created_at = 1 WHERE name = 'x'").run();
    for (let i = 0; i < 3; i++) {
      const r = await callJson("/v1/completions", { key: a.key, json: { model: "a/x", prompt: "Hi" } });
      expect(r.status).toBe(200);
      expect(runners.completions[runners.completions.length - 1]!.body.adapters[0].id).toBe(x2.id);
    }
    expect((await callJson(`/v1/adapters/${encodeURIComponent("a/x")}`, { key: a.key })).body.id).toBe(x2.id);
  });

  it("a base id a runner served before stays the base while no runner serves it, never an adapter spelled like it", async () => {
    runners.restore();
    Object.assign(runners, installFakeRunners([MANIFEST, { ...MANIFEST, id: "acme/base" }]));
    const acme = await newTenant("acme");
    const other = await newTenant("other");
    // acme publishes an adapter whose `owner/name` reference spells the base model's id.
    const squat = await uploadAdapter(acme.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "base", base_model: "acme/base", visibility: "public" }));
    expect(squat.status).toBe(201);
    const db = createDb(env.DB);
    const noRunnerServesIt = () => false;
    for (const caller of [acme, other]) {
      expect(await resolveModelTarget(db, caller.id, "acme/base", noRunnerServesIt)).toEqual({ kind: "base", baseModel: "acme/base" });
      // The adapter stays reachable by its explicit version.
      expect((await resolveModelTarget(db, caller.id, "acme/base@1.0.0", noRunnerServesIt)).kind).toBe("adapter");
    }
  });

  it("an adapter model plus `adapters` = that adapter at weight 1 followed by the listed ones", async () => {
    const { a, x1, y } = await setup();
    const r = await callJson("/v1/chat/completions", {
      key: a.key,
      json: { model: "a/x@1.0.0", messages: [{ role: "user", content: "Hi" }], adapters: [{ id: "a/y", weight: -0.5 }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.model).toBe("a/x@1.0.0");
    expect(runners.completions[0]!.body.adapters).toEqual([
      { id: x1.id, sha256: x1.sha256, weight: 1 },
      { id: y.id, sha256: y.sha256, weight: -0.5 },
    ]);
  });

  it("composition:<name> runs the caller's own composition on its base", async () => {
    const { a, b, x1, y } = await setup();
    const r = await callJson("/v1/completions", { key: a.key, json: { model: "composition:blend", prompt: "Hi" } });
    expect(r.status).toBe(200);
    expect(r.body.model).toBe("composition:blend");
    expect(runners.completions[0]!.body).toMatchObject({
      model: MODEL,
      adapters: [
        { id: x1.id, sha256: x1.sha256, weight: 0.5 },
        { id: y.id, sha256: y.sha256, weight: 2 },
      ],
    });
    // Another tenant's composition, a missing one, another tenant's private adapter: 404, nothing sent.
    expectError(await callJson("/v1/completions", { key: b.key, json: { model: "composition:blend", prompt: "Hi" } }), 404);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "composition:", prompt: "Hi" } }), 404);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "b/secret", prompt: "Hi" } }), 404);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "a/nope@1.0.0", prompt: "Hi" } }), 404);
    // Two compositions at once is ambiguous.
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "composition:blend", prompt: "Hi", composition: "blend", adapters: [] } }), 400);
    expect(runners.completions).toHaveLength(1);
  });

  it("an adapter model mixed with an adapter of another base → 422", async () => {
    const { a } = await setup();
    const other = await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(5, 2)), { name: "o", base_model: "other-base" }));
    expect(other.status).toBe(201);
    expectError(await callJson("/v1/completions", { key: a.key, json: { model: "a/x", prompt: "Hi", adapters: [{ id: "a/o", weight: 1 }] } }), 422);
  });
});

describe("GET /v1/models", () => {
  it("lists base models, own compositions and visible adapters with `parent`; never another tenant's private adapter", async () => {
    const { a, b } = await setup();
    const list = await callJson("/v1/models", { key: a.key });
    expect(list.status).toBe(200);
    const ids = list.body.data.map((m: any) => m.id);
    // Adapters by name, then by id (random): the two versions of x in either order.
    expect([...ids.slice(0, 3), ...ids.slice(3, 5).sort(), ids[5]]).toEqual(["other-base", MODEL, "composition:blend", "a/x@1.0.0", "a/x@1.1.0", "a/y@1.0.0"]);
    const byId = Object.fromEntries(list.body.data.map((m: any) => [m.id, m]));
    expect(byId[MODEL]).toMatchObject({ object: "model", kind: "base", parent: null, root: MODEL });
    expect(byId["a/x@1.0.0"]).toMatchObject({ object: "model", kind: "adapter", parent: MODEL, root: MODEL, owned_by: "a" });
    expect(byId["composition:blend"]).toMatchObject({ kind: "composition", parent: MODEL, owned_by: "a" });
    expect(list.body).toMatchObject({ has_more: false, first_id: "other-base", last_id: "a/y@1.0.0" });
    // Tenant b sees the public adapter and its own, not a's private ones or a's composition.
    const other = (await callJson("/v1/models", { key: b.key })).body.data.map((m: any) => m.id);
    expect(other).toEqual(["other-base", MODEL, "b/secret@1.0.0", "a/y@1.0.0"]);
  });

  it("paginates with after/limit across the three kinds", async () => {
    const { a } = await setup();
    const all = (await callJson("/v1/models", { key: a.key })).body.data.map((m: any) => m.id);
    for (const limit of [1, 2, 4]) {
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const q: string = `/v1/models?limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`;
        const page = await callJson(q, { key: a.key });
        expect(page.status).toBe(200);
        expect(page.body.data.length).toBeLessThanOrEqual(limit);
        seen.push(...page.body.data.map((m: any) => m.id));
        if (!page.body.has_more) break;
        after = page.body.last_id;
      }
      expect(seen).toEqual(all);
    }
    expectError(await callJson("/v1/models?after=nothing-like-this", { key: a.key }), 400);
    expectError(await callJson("/v1/models?limit=0", { key: a.key }), 400);
  });

  it("GET /v1/models/:id answers for each kind (slash URL-encoded or not), 404 for what the caller cannot see", async () => {
    const { a, b, x1 } = await setup();
    for (const path of ["a%2Fx@1.0.0", "a/x@1.0.0", x1.id]) {
      const one = await callJson(`/v1/models/${path}`, { key: a.key });
      expect(one.status, path).toBe(200);
      expect(one.body).toMatchObject({ id: "a/x@1.0.0", kind: "adapter", parent: MODEL });
      expect(one.body.manifest.id).toBe(MODEL);
    }
    const comp = await callJson("/v1/models/composition:blend", { key: a.key });
    expect(comp.body).toMatchObject({ id: "composition:blend", kind: "composition", parent: MODEL });
    const base = await callJson(`/v1/models/${MODEL}`, { key: a.key });
    expect(base.body).toMatchObject({ id: MODEL, kind: "base", parent: null });
    expectError(await callJson("/v1/models/composition:blend", { key: b.key }), 404);
    expectError(await callJson("/v1/models/a%2Fx@1.0.0", { key: b.key }), 404);
    expectError(await callJson("/v1/models/a%2Fx@1.0.0"), 401);
  });
});

describe("stream_options.include_usage", () => {
  it("adds one chunk with usage and no choices after the last one (completions and chat)", async () => {
    const { a } = await setup();
    for (const [path, body] of [
      ["/v1/completions", { prompt: "Hi" }],
      ["/v1/chat/completions", { messages: [{ role: "user", content: "Hi" }] }],
    ] as const) {
      const res = await call(path, { key: a.key, json: { model: "a/x", ...body, stream: true, stream_options: { include_usage: true } } });
      const chunks = await readSse(res);
      const last = chunks[chunks.length - 1];
      expect(last.choices).toEqual([]);
      expect(last.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
      expect(last.model).toBe("a/x");
      const finish = chunks[chunks.length - 2];
      expect(finish.choices[0].finish_reason).toBe("length");
      expect(finish.usage).toBeUndefined();
      expect(chunks.slice(0, -1).every((c) => c.usage === undefined)).toBe(true);
    }
  });
});
