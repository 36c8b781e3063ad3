/** Maps errors to the `{error: {type, message}}` body and status, with Retry-After on 429/503. */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { isEngineError } from "../engine/index.js";

export function errorBody(type: string, message: string) {
  return { error: { type, message } };
}

export function errorResponse(c: Context, e: unknown): Response {
  if (isEngineError(e)) {
    if (e.retryAfterS !== undefined) c.header("Retry-After", String(e.retryAfterS));
    return c.json(errorBody(e.type, e.message), e.status as ContentfulStatusCode);
  }
  return c.json(errorBody("internal_error", (e as Error)?.message ?? String(e)), 500);
}
