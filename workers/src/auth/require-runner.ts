import type { MiddlewareHandler } from "hono";
import { verifyRequest } from "#core/wire/hmac";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from "#core/wire/hmac";
import type { AppEnv } from "../app-env.js";
import { forbidden, serviceUnavailable, unauthorized } from "../errors/api-error.js";

/** Internal routes called by runners: the request must carry a valid HMAC signature (RUNNER_SECRET). */
export const requireRunner: MiddlewareHandler<AppEnv> = async function requireRunner(c, next) {
  const secret = c.env.RUNNER_SECRET;
  if (!secret) throw serviceUnavailable("internal API disabled: RUNNER_SECRET is not configured");
  const url = new URL(c.req.url);
  const body = c.req.method === "GET" || c.req.method === "HEAD" ? undefined : new Uint8Array(await c.req.arrayBuffer());
  const result = await verifyRequest(secret, {
    method: c.req.method,
    pathAndQuery: url.pathname + url.search,
    body,
    timestampHeader: c.req.header(TIMESTAMP_HEADER) ?? null,
    signatureHeader: c.req.header(SIGNATURE_HEADER) ?? null,
  });
  if (!result.ok) {
    throw result.reason === "missing signature headers"
      ? unauthorized(`runner signature required: ${result.reason}`)
      : forbidden(`runner signature rejected: ${result.reason}`);
  }
  await next();
};
