import { describe, expect, it } from "vitest";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners, MANIFEST } from "./fake-runner.js";
import { callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";

useFakeRunners([MANIFEST, { ...MANIFEST, id: "other-model" }]);

async function setup() {
  const a = await newTenant("a");
  const b = await newTenant("b");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
  const y = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(2, 4)), { name: "y", visibility: "public" }))).body;
  const z = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(3, 8)), { name: "z", base_model: "other-model" }))).body;
  return { a, b, x, y, z };
}

describe("compositions", () => {
  it("saves, lists, gets (by id or name) and deletes a mix", async () => {
    const { a, x, y } = await setup();
    const created = await callJson("/v1/compositions", {
      key: a.key,
      json: { name: "blend", adapters: [{ id: x.id, weight: 0.5 }, { id: "a/y@1.0.0", weight: -1 }] },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: "blend",
      base_model: x.base_model,
      adapters: [
        { id: x.id, ref: "a/x@1.0.0", weight: 0.5 },
        { id: y.id, ref: "a/y@1.0.0", weight: -1 },
      ],
    });
    const list = await callJson("/v1/compositions", { key: a.key });
    expect(list.body.data).toHaveLength(1);
    expect((await callJson(`/v1/compositions/${created.body.id}`, { key: a.key })).body).toEqual(created.body);
    expect((await callJson("/v1/compositions/blend", { key: a.key })).body.id).toBe(created.body.id);
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "blend", adapters: [{ id: x.id, weight: 1 }] } }), 409);
    const del = await callJson(`/v1/compositions/${created.body.id}`, { key: a.key, method: "DELETE" });
    expect(del.body).toEqual({ id: created.body.id, deleted: true });
    expectError(await callJson(`/v1/compositions/${created.body.id}`, { key: a.key }), 404);
  });

  it("refuses invalid mixes", async () => {
    const { a, b, x, z } = await setup();
    // Different base models.
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "m", adapters: [{ id: x.id, weight: 1 }, { id: z.id, weight: 1 }] } }), 422);
    // Another tenant's private adapter: 404, as if it did not exist.
    expectError(await callJson("/v1/compositions", { key: b.key, json: { name: "m", adapters: [{ id: x.id, weight: 1 }] } }), 404);
    // Empty, non-finite weight, too many.
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "m", adapters: [] } }), 400);
    expectError(await callJson("/v1/compositions", { key: a.key, body: `{"name":"m","adapters":[{"id":"${x.id}","weight":1e999}]}`, headers: { "content-type": "application/json" } }), 400);
    const nine = Array.from({ length: 9 }, () => ({ id: x.id, weight: 1 }));
    expectError(await callJson("/v1/compositions", { key: a.key, json: { name: "m", adapters: nine } }), 400);
  });

  it("compositions are private to their owner", async () => {
    const { a, b, y } = await setup();
    const mine = await callJson("/v1/compositions", { key: b.key, json: { name: "m", adapters: [{ id: y.id, weight: 1 }] } });
    expect(mine.status).toBe(201); // a public adapter of another tenant may be composed
    expectError(await callJson(`/v1/compositions/${mine.body.id}`, { key: a.key }), 404);
    expectError(await callJson(`/v1/compositions/${mine.body.id}`, { key: a.key, method: "DELETE" }), 404);
    expect((await callJson("/v1/compositions", { key: a.key })).body.data).toEqual([]);
  });

  it("deleting a composed adapter is 409 unless force=true, which deletes the owner's own compositions", async () => {
    const { a, y } = await setup();
    const comp = await callJson("/v1/compositions", { key: a.key, json: { name: "m", adapters: [{ id: y.id, weight: 1 }] } });
    expect(comp.status).toBe(201);
    expectError(await callJson(`/v1/adapters/${y.id}`, { key: a.key, method: "DELETE" }), 409, "conflict_error");
    const forced = await callJson(`/v1/adapters/${y.id}?force=true`, { key: a.key, method: "DELETE" });
    expect(forced.status).toBe(200);
    expect(forced.body.deleted_compositions).toEqual([comp.body.id]);
    expectError(await callJson(`/v1/compositions/${comp.body.id}`, { key: a.key }), 404);
  });

  it("force=true never deletes another tenant's composition: the adapter it uses stays (409)", async () => {
    const { a, b, y } = await setup();
    const theirs = await callJson("/v1/compositions", { key: b.key, json: { name: "m", adapters: [{ id: y.id, weight: 1 }] } });
    expect(theirs.status).toBe(201);
    for (const query of ["", "?force=true"]) {
      const refused = await callJson(`/v1/adapters/${y.id}${query}`, { key: a.key, method: "DELETE" });
      expectError(refused, 409, "conflict_error");
      expect(refused.body.error.message).not.toMatch(/\d/); // no count of other tenants' data
    }
    expect((await callJson(`/v1/compositions/${theirs.body.id}`, { key: b.key })).status).toBe(200);
    expect((await callJson(`/v1/adapters/${y.id}`, { key: b.key })).status).toBe(200);
  });
});
