import { describe, expect, it } from "vitest";
import { signRequest, verifyRequest, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "./hmac.js";

describe("hmac request signing", () => {
  const input = { method: "POST", pathAndQuery: "/internal/v1/completions", body: '{"a":1}' };

  it("verifies what it signed", async () => {
    const h = await signRequest("s3cret", input);
    const r = await verifyRequest("s3cret", {
      ...input,
      timestampHeader: h[TIMESTAMP_HEADER],
      nonceHeader: h[NONCE_HEADER],
      signatureHeader: h[SIGNATURE_HEADER],
    });
    expect(r).toEqual({ ok: true });
  });

  it("rejects a wrong secret, a changed body, path or method", async () => {
    const h = await signRequest("s3cret", input);
    const base = { timestampHeader: h[TIMESTAMP_HEADER], nonceHeader: h[NONCE_HEADER], signatureHeader: h[SIGNATURE_HEADER] };
    expect((await verifyRequest("other", { ...input, ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, body: '{"a":2}', ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, pathAndQuery: "/x", ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, method: "GET", ...base })).ok).toBe(false);
  });

  it("rejects timestamps outside the replay window and malformed headers", async () => {
    const old = await signRequest("s3cret", { ...input, timestamp: 1000 });
    const r = await verifyRequest(
      "s3cret",
      { ...input, timestampHeader: old[TIMESTAMP_HEADER], nonceHeader: old[NONCE_HEADER], signatureHeader: old[SIGNATURE_HEADER] },
      { now: 1000 + 301 },
    );
    expect(r).toEqual({ ok: false, reason: "timestamp outside the 300s replay window" });
    const missing = await verifyRequest("s3cret", { ...input, timestampHeader: null, nonceHeader: null, signatureHeader: null });
    expect(missing.ok).toBe(false);
    const bad = await verifyRequest("s3cret", { ...input, timestampHeader: "12x", nonceHeader: "0".repeat(32), signatureHeader: "zz" });
    expect(bad).toEqual({ ok: false, reason: "malformed timestamp" });
  });

  it("binds a fresh nonce into every signature; a changed or missing nonce fails; future timestamps beyond the skew fail", async () => {
    const a = await signRequest("s3cret", { ...input, timestamp: 1000 });
    const b = await signRequest("s3cret", { ...input, timestamp: 1000 });
    expect(a[NONCE_HEADER]).toMatch(/^[0-9a-f]{32}$/);
    expect(a[NONCE_HEADER]).not.toBe(b[NONCE_HEADER]);
    expect(a[SIGNATURE_HEADER]).not.toBe(b[SIGNATURE_HEADER]);
    const verify = (h: Record<string, string>, nonce: string | null, now: number) =>
      verifyRequest("s3cret", { ...input, timestampHeader: h[TIMESTAMP_HEADER]!, nonceHeader: nonce, signatureHeader: h[SIGNATURE_HEADER]! }, { now });
    expect(await verify(a, a[NONCE_HEADER]!, 1000)).toEqual({ ok: true });
    expect(await verify(a, b[NONCE_HEADER]!, 1000)).toEqual({ ok: false, reason: "bad signature" });
    expect(await verify(a, null, 1000)).toEqual({ ok: false, reason: "missing signature headers" });
    expect(await verify(a, "xyz", 1000)).toEqual({ ok: false, reason: "malformed nonce" });
    expect(await verify(a, a[NONCE_HEADER]!, 1000 - 30)).toEqual({ ok: true });
    expect(await verify(a, a[NONCE_HEADER]!, 1000 - 31)).toEqual({ ok: false, reason: "timestamp more than 30s in the future" });
    expect(await verify(a, a[NONCE_HEADER]!, 1000 - 299)).toEqual({ ok: false, reason: "timestamp more than 30s in the future" });
  });
});
