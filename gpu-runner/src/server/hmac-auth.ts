/**
 * Middleware: every /internal request must carry a valid HMAC signature of
 * timestamp + method + path?query + body (core/src/wire/hmac.ts) within the replay window.
 * Failures are 401 with the reason. The body is read once here; Hono caches it for the route.
 * The body is read (before its signature can be checked) only up to `maxBodyBytes`: larger
 * bodies are refused with 413 as soon as they are known to be larger (hono's bodyLimit).
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyRequest } from "#core/wire/hmac";

/** Largest /internal request body read (16 MiB: far above any prompt a context window holds). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export function hmacAuth(secret: string, windowSeconds: number, maxBodyBytes = DEFAULT_MAX_BODY_BYTES): MiddlewareHandler {
  const limit = bodyLimit({
    maxSize: maxBodyBytes,
    onError: (c) =>
      c.json({ error: { type: "payload_too_large_error", message: `request body over the runner's limit of ${maxBodyBytes} bytes` } }, 413),
  });
  return async function hmacAuthMiddleware(c, next) {
    return limit(c, async () => {
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
        c.res = c.json({ error: { type: "authentication_error", message: `request signature rejected: ${result.reason}` } }, 401);
        return;
      }
      await next();
    });
  };
}
