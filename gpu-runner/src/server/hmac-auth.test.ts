import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { signRequest } from "../../../core/src/wire/hmac.js";
import { hmacAuth } from "./hmac-auth.js";

const SECRET = "hmac-middleware-secret";

function app() {
  const a = new Hono();
  a.use("/internal/*", hmacAuth(SECRET, 300));
  a.post("/internal/echo", async (c) => c.json({ got: await c.req.json() }));
  a.get("/internal/list", (c) => c.json({ ok: true }));
  return a;
}

describe("hmacAuth", () => {
  it("accepts a signed request and the route still reads the body", async () => {
    const body = JSON.stringify({ x: 1 });
    const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo?a=1", body });
    const res = await app().request("http://runner/internal/echo?a=1", { method: "POST", body, headers });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ got: { x: 1 } });
  });

  it("signs GETs over path and query", async () => {
    const headers = await signRequest(SECRET, { method: "GET", pathAndQuery: "/internal/list" });
    expect((await app().request("http://runner/internal/list", { headers })).status).toBe(200);
    expect((await app().request("http://runner/internal/list?x=1", { headers })).status).toBe(401);
  });

  it("rejects missing, wrong, tampered and stale signatures with 401 and the reason", async () => {
    const body = JSON.stringify({ x: 1 });
    const cases: [Record<string, string>, string, RegExp][] = [
      [{}, body, /missing signature headers/],
      [await signRequest("other-secret", { method: "POST", pathAndQuery: "/internal/echo", body }), body, /bad signature/],
      [await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body }), JSON.stringify({ x: 2 }), /bad signature/],
      [
        await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body, timestamp: Math.floor(Date.now() / 1000) - 3600 }),
        body,
        /replay window/,
      ],
    ];
    for (const [headers, sent, reason] of cases) {
      const res = await app().request("http://runner/internal/echo", { method: "POST", body: sent, headers });
      expect(res.status).toBe(401);
      const json = (await res.json()) as { error: { type: string; message: string } };
      expect(json.error.type).toBe("unauthorized");
      expect(json.error.message).toMatch(reason);
    }
  });
});
