import type { Context, MiddlewareHandler } from "hono";
import { DEFAULT_REPLAY_WINDOW_SECONDS, SIGNATURE_HEADER, TIMESTAMP_HEADER, signatureHeaders, verifyRequest } from "#core/wire/hmac";
import { ReplayGuard } from "#core/wire/replay-guard";
import type { AppEnv } from "../app-env.js";
import { notFound } from "../errors/api-error.js";
import { log } from "../logging/log.js";
import { claimSignature } from "./used-signatures.js";

/** Per-isolate memory of accepted signatures: refuses a replay to the same isolate without a D1 round trip. */
const isolateSeen = new ReplayGuard();

/** Why the call is refused, or null when it is a valid, first-use runner signature. */
async function refusal(c: Context<AppEnv>): Promise<string | null> {
  const secret = c.env.RUNNER_SECRET;
  if (!secret) return "RUNNER_SECRET is not configured";
  const url = new URL(c.req.url);
  const body = c.req.method === "GET" || c.req.method === "HEAD" ? undefined : new Uint8Array(await c.req.arrayBuffer());
  const result = await verifyRequest(secret, {
    method: c.req.method,
    pathAndQuery: url.pathname + url.search,
    body,
    ...signatureHeaders((name) => c.req.header(name)),
  });
  if (!result.ok) return result.reason;
  const signature = c.req.header(SIGNATURE_HEADER)!;
  const expiresAt = Number(c.req.header(TIMESTAMP_HEADER)) + DEFAULT_REPLAY_WINDOW_SECONDS + 1;
  const local = isolateSeen.claim(signature, expiresAt);
  if (local === "replayed") return "signature already used (replay)";
  if (local === "full") return "too many signed calls in the replay window";
  if (!(await claimSignature(c.var.db, signature, expiresAt * 1000))) return "signature already used (replay)";
  return null;
}

/**
 * Internal routes called by runners: the request must carry a valid HMAC signature
 * (RUNNER_SECRET; timestamp at most 300 s old and 30 s ahead) that was never used before
 * (per isolate in memory, across isolates in D1 `used_signatures`). Anything else is answered
 * exactly like a path that does not exist (404, no reason); the reason is logged.
 */
export const requireRunner: MiddlewareHandler<AppEnv> = async function requireRunner(c, next) {
  const reason = await refusal(c);
  if (reason !== null) {
    log("warn", "internal call refused", { request_id: c.get("requestId"), path: c.req.path, reason });
    throw notFound(`no route for ${c.req.method} ${c.req.path}`);
  }
  await next();
};
