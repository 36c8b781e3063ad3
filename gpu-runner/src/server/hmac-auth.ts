/**
 * Middleware: every /internal request must carry a valid HMAC signature of
 * timestamp + nonce + method + path?query + body (core/src/wire/hmac.ts): a timestamp at most
 * `windowSeconds` old and at most 30 s ahead, and a signature not accepted before (a
 * ReplayGuard remembers the accepted ones for the window; bounded: when it holds `replayCapacity`
 * live signatures, further calls get 503 instead of opening a replay hole).
 * Failures are 401 with the reason. The body is read once here; Hono caches it for the route.
 * The body is read (before its signature can be checked) only up to `maxBodyBytes`: larger
 * bodies are refused with 413 as soon as they are known to be larger (hono's bodyLimit).
 */
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeaders, verifyRequest } from "#core/wire/hmac";
import { DEFAULT_REPLAY_GUARD_CAPACITY, ReplayGuard } from "#core/wire/replay-guard";

/** Largest /internal request body read (16 MiB: far above any prompt a context window holds). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;

export function hmacAuth(
  secret: string,
  windowSeconds: number,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
  replayCapacity = DEFAULT_REPLAY_GUARD_CAPACITY,
): MiddlewareHandler {
  const seen = new ReplayGuard(replayCapacity);
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
          ...signatureHeaders((name) => c.req.header(name)),
        },
        { windowSeconds },
      );
      if (!result.ok) {
        c.res = c.json({ error: { type: "authentication_error", message: `request signature rejected: ${result.reason}` } }, 401);
        return;
      }
      const claim = seen.claim(c.req.header(SIGNATURE_HEADER)!, Number(c.req.header(TIMESTAMP_HEADER)) + windowSeconds + 1);
      if (claim === "replayed") {
        c.res = c.json({ error: { type: "authentication_error", message: "request signature rejected: already used (replay)" } }, 401);
        return;
      }
      if (claim === "full") {
        c.res = c.json({ error: { type: "service_unavailable_error", message: "too many signed requests in the replay window" } }, 503, { "retry-after": "1" });
        return;
      }
      await next();
    });
  };
}
