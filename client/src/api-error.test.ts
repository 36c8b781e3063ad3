import { describe, expect, it } from "vitest";
import { errorFromResponse, LoraedgeError } from "./api-error.js";

describe("errorFromResponse", () => {
  it("takes type and message from the API's {error} body, the request id and Retry-After from the headers", async () => {
    const res = new Response(JSON.stringify({ error: { type: "rate_limit_error", message: "60 requests per minute" } }), {
      status: 429,
      headers: { "retry-after": "12", "x-request-id": "req-9" },
    });
    const e = await errorFromResponse(res);
    expect(e).toBeInstanceOf(LoraedgeError);
    expect(e).toMatchObject({ status: 429, type: "rate_limit_error", message: "60 requests per minute", requestId: "req-9", retryAfter: 12 });
  });

  it("keeps a body that is not the API's (a proxy's page) as the message, typed by status", async () => {
    const e = await errorFromResponse(new Response("Bad Gateway from the proxy\n", { status: 502, statusText: "Bad Gateway" }));
    expect(e).toMatchObject({ status: 502, type: "http_502", message: "Bad Gateway from the proxy", requestId: null, retryAfter: null });
    const empty = await errorFromResponse(new Response(null, { status: 503, statusText: "Service Unavailable" }));
    expect(empty.message).toBe("Service Unavailable");
  });
});
