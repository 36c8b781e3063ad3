import { describe, expect, it } from "vitest";
import { signRequest, verifyRequest, SIGNATURE_HEADER, TIMESTAMP_HEADER } from "./hmac.js";

describe("hmac request signing", () => {
  const input = { method: "POST", pathAndQuery: "/internal/v1/completions", body: '{"a":1}' };

  it("verifies what it signed", async () => {
    const h = await signRequest("s3cret", input);
    const r = await verifyRequest("s3cret", {
      ...input,
      timestampHeader: h[TIMESTAMP_HEADER],
      signatureHeader: h[SIGNATURE_HEADER],
    });
    expect(r).toEqual({ ok: true });
  });

  it("rejects a wrong secret, a changed body, path or method", async () => {
    const h = await signRequest("s3cret", input);
    const base = { timestampHeader: h[TIMESTAMP_HEADER], signatureHeader: h[SIGNATURE_HEADER] };
    expect((await verifyRequest("other", { ...input, ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, body: '{"a":2}', ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, pathAndQuery: "/x", ...base })).ok).toBe(false);
    expect((await verifyRequest("s3cret", { ...input, method: "GET", ...base })).ok).toBe(false);
  });

  it("rejects timestamps outside the replay window and malformed headers", async () => {
    const old = await signRequest("s3cret", { ...input, timestamp: 1000 });
    const r = await verifyRequest(
      "s3cret",
      { ...input, timestampHeader: old[TIMESTAMP_HEADER], signatureHeader: old[SIGNATURE_HEADER] },
      { now: 1000 + 301 },
    );
    expect(r).toEqual({ ok: false, reason: "timestamp outside the 300s replay window" });
    const missing = await verifyRequest("s3cret", { ...input, timestampHeader: null, signatureHeader: null });
    expect(missing.ok).toBe(false);
    const bad = await verifyRequest("s3cret", { ...input, timestampHeader: "12x", signatureHeader: "zz" });
    expect(bad).toEqual({ ok: false, reason: "malformed timestamp" });
  });
});
