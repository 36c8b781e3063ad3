import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { signRequest } from "#core/wire/hmac";
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

  it("refuses a body over the limit with 413 without reading it to the end (no Content-Length)", async () => {
    const a = new Hono();
    a.use("/internal/*", hmacAuth(SECRET, 300, 4096));
    a.post("/internal/echo", async (c) => c.json({ size: (await c.req.arrayBuffer()).byteLength }));
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    });
    const res = await a.request("http://runner/internal/echo", { method: "POST", body: endless, duplex: "half" } as RequestInit);
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("payload_too_large_error");
    expect(pulled).toBeLessThan(100);
    // Within the limit, a signed body still reaches the route whole.
    const body = "x".repeat(4000);
    const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body });
    const ok = await a.request("http://runner/internal/echo", { method: "POST", body, headers });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ size: 4000 });
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
      expect(json.error.type).toBe("authentication_error");
      expect(json.error.message).toMatch(reason);
    }
  });

  it("refuses a second use of an accepted signature (replay) and timestamps more than 30 s ahead (#12)", async () => {
    const a = app();
    const body = JSON.stringify({ x: 1 });
    const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body });
    expect((await a.request("http://runner/internal/echo", { method: "POST", body, headers })).status).toBe(200);
    const replay = await a.request("http://runner/internal/echo", { method: "POST", body, headers });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { error: { message: string } }).error.message).toMatch(/already used \(replay\)/);
    // The same request signed anew (fresh nonce) is a new call, even within the same second.
    const again = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body, timestamp: Number(headers["x-loraedge-timestamp"]) });
    expect((await a.request("http://runner/internal/echo", { method: "POST", body, headers: again })).status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    const future = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body, timestamp: now + 299 });
    const refused = await a.request("http://runner/internal/echo", { method: "POST", body, headers: future });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toMatch(/more than 30s in the future/);
    const skewed = await signRequest(SECRET, { method: "POST", pathAndQuery: "/internal/echo", body, timestamp: now + 20 });
    expect((await a.request("http://runner/internal/echo", { method: "POST", body, headers: skewed })).status).toBe(200);
  });

  it("bounded memory: with `replayCapacity` live signatures held, further calls get 503, never a replay hole", async () => {
    const a = new Hono();
    a.use("/internal/*", hmacAuth(SECRET, 300, 4096, 2));
    a.get("/internal/list", (c) => c.json({ ok: true }));
    const sign = () => signRequest(SECRET, { method: "GET", pathAndQuery: "/internal/list" });
    const first = await sign();
    expect((await a.request("http://runner/internal/list", { headers: first })).status).toBe(200);
    expect((await a.request("http://runner/internal/list", { headers: await sign() })).status).toBe(200);
    const full = await a.request("http://runner/internal/list", { headers: await sign() });
    expect(full.status).toBe(503);
    expect((await a.request("http://runner/internal/list", { headers: first })).status).toBe(401);
  });
});
