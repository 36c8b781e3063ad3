import { describe, expect, it } from "vitest";
import { call } from "./helpers.js";

describe("OpenAPI and docs", () => {
  it("/openapi.json documents every public route with its schemas", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc: any = await res.json();
    expect(doc.openapi).toBe("3.1.0");
    const ops = Object.entries(doc.paths).flatMap(([p, o]: [string, any]) => Object.keys(o).map((m) => `${m.toUpperCase()} ${p}`));
    for (const op of [
      "POST /v1/tenants",
      "PUT /v1/tenants/{name}",
      "POST /v1/keys",
      "DELETE /v1/keys/{id}",
      "POST /v1/adapters",
      "GET /v1/adapters",
      "GET /v1/adapters/{id}",
      "GET /v1/adapters/{id}/download",
      "PATCH /v1/adapters/{id}",
      "DELETE /v1/adapters/{id}",
      "POST /v1/compositions",
      "GET /v1/compositions",
      "GET /v1/compositions/{id}",
      "DELETE /v1/compositions/{id}",
      "POST /v1/compositions/{id}/bake",
      "GET /v1/models",
      "GET /v1/models/{id}",
      "POST /v1/completions",
      "POST /v1/chat/completions",
      "GET /v1/usage",
    ]) {
      expect(ops).toContain(op);
    }
    expect(ops.some((o) => o.includes("/internal/"))).toBe(false);
    expect(doc.components.schemas.CompletionRequest.properties.adapters).toBeDefined();
    expect(doc.components.schemas.Completion.properties.usage).toBeDefined(); // core's wire schema, named
    expect(doc.paths["/v1/adapters"].post.requestBody.content["multipart/form-data"]).toBeDefined();
    expect(doc.components.securitySchemes.apiKey.scheme).toBe("bearer");
  });

  it("/docs is a self-contained HTML page", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain("/openapi.json");
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=["']https?:/);
  });
});
