import { describe, expect, it } from "vitest";
import { ADMIN, call, callJson, expectError, newTenant } from "./helpers.js";

describe("tenants and keys", () => {
  it("creates a tenant with a key shown once; the key authenticates", async () => {
    const t = await newTenant("acme");
    expect(t.key).toMatch(/^le_[A-Za-z0-9_-]{43}$/);
    const keys = await callJson("/v1/keys", { key: t.key });
    expect(keys.status).toBe(200);
    expect(keys.body.data).toHaveLength(1);
    expect(keys.body.data[0].prefix).toBe(t.key.slice(0, 8));
    expect(JSON.stringify(keys.body)).not.toContain(t.key);
  });

  it("refuses admin calls without or with a wrong admin token", async () => {
    expectError(await callJson("/v1/tenants", { json: { name: "x" } }), 401, "authentication_error");
    expectError(await callJson("/v1/tenants", { key: "nope", json: { name: "x" } }), 403, "permission_error");
    const t = await newTenant("acme");
    expectError(await callJson("/v1/tenants", { key: t.key, json: { name: "x" } }), 403);
  });

  it("409 on a duplicate tenant name, 400 on a bad one", async () => {
    await newTenant("acme");
    expectError(await callJson("/v1/tenants", { key: ADMIN, json: { name: "acme" } }), 409, "conflict_error");
    expectError(await callJson("/v1/tenants", { key: ADMIN, json: { name: "Bad/Name" } }), 400, "invalid_request_error");
    expectError(await callJson("/v1/tenants", { key: ADMIN, json: {} }), 400);
  });

  it("PUT /v1/tenants/:name is an idempotent upsert registering a given key", async () => {
    const key = "dev-key-0123456789abcdef";
    const first = await callJson("/v1/tenants/dev", { method: "PUT", key: ADMIN, json: { api_key: key } });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: "dev", api_key_registered: true });
    const again = await callJson("/v1/tenants/dev", { method: "PUT", key: ADMIN, json: { api_key: key } });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const noBody = await callJson("/v1/tenants/dev", { method: "PUT", key: ADMIN });
    expect(noBody.status).toBe(200);
    expect(noBody.body.api_key_registered).toBe(false);
    const keys = await callJson("/v1/keys", { key });
    expect(keys.status).toBe(200);
    expect(keys.body.data).toHaveLength(1);
    // The same key cannot be registered to another tenant.
    expectError(await callJson("/v1/tenants/other", { method: "PUT", key: ADMIN, json: { api_key: key } }), 409);
  });

  it("401 for missing, malformed, unknown and revoked keys", async () => {
    expectError(await callJson("/v1/keys"), 401, "authentication_error");
    expectError(await callJson("/v1/keys", { headers: { authorization: "Basic abc" } }), 401);
    expectError(await callJson("/v1/keys", { key: "le_unknown" }), 401);
    const t = await newTenant("acme");
    const created = await callJson("/v1/keys", { key: t.key, method: "POST" });
    expect(created.status).toBe(201);
    const second = created.body.key as string;
    expect((await call("/v1/keys", { key: second })).status).toBe(200);
    const revoked = await callJson(`/v1/keys/${created.body.id}`, { key: t.key, method: "DELETE" });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revoked_at).not.toBeNull();
    expectError(await callJson("/v1/keys", { key: second }), 401);
    expect((await call("/v1/keys", { key: t.key })).status).toBe(200);
  });

  it("a tenant cannot revoke another tenant's key (404)", async () => {
    const a = await newTenant("a");
    const b = await newTenant("b");
    const keysB = await callJson("/v1/keys", { key: b.key });
    expectError(await callJson(`/v1/keys/${keysB.body.data[0].id}`, { key: a.key, method: "DELETE" }), 404);
  });

  it("errors are JSON and carry a request id", async () => {
    const r = await call("/nope");
    expect(r.status).toBe(404);
    expect(r.headers.get("x-request-id")).toMatch(/.+/);
    expect(await r.json()).toMatchObject({ error: { type: "not_found_error" } });
    const withId = await call("/healthz", { headers: { "x-request-id": "abc-123" } });
    expect(withId.headers.get("x-request-id")).toBe("abc-123");
  });
});
