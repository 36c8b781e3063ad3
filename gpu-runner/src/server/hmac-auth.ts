/**
 * Middleware: every /internal request must carry a valid HMAC signature of
 * timestamp + method + path?query + body (core/src/wire/hmac.ts) within the replay window.
 * Failures are 401 with the reason. The body is read once here; Hono caches it for the route.
 */
import type { MiddlewareHandler } from "hono";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyRequest } from "../../../core/src/wire/hmac.js";

export function hmacAuth(secret: string, windowSeconds: number): MiddlewareHandler {
  return async function hmacAuthMiddleware(c, next) {
    const url = new URL(c.req.url);
    const body = c.req.method === "GET" || c.req.method === "HEAD" ? new Uint8Array(0) : new Uint8Array(await c.req.arrayBuffer());
    const result = await verifyRequest(
      secret,
      {
        method: c.req.method,
        pathAndQuery: url.pathname + url.search,
        body,
        timestampHeader: c.req.header(TIMESTAMP_HEADER) ?? null,
        signatureHeader: c.req.header(SIGNATURE_HEADER) ?? null,
      },
      { windowSeconds },
    );
    if (!result.ok) {
      return c.json({ error: { type: "unauthorized", message: `request signature rejected: ${result.reason}` } }, 401);
    }
    await next();
  };
}
