/**
 * The runner's one error handler: whatever a route throws becomes the `{error: {type, message}}`
 * body of the shared vocabulary (core/src/wire/errors.ts) with that type's status, Retry-After
 * on overload/unavailability. A client that went away (AbortedError) gets a bodiless 499.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { errorBody, typeForStatus, type ErrorType } from "#core/wire/errors";
import { AbortedError, isEngineError, type Logger } from "../engine/index.js";

export { errorBody };

/** nginx's "client closed request": logged and counted, never read by anyone. */
export const CLIENT_CLOSED_REQUEST = 499;

export function errorResponse(e: unknown, log?: Logger, path?: string): Response {
  if (e instanceof AbortedError) return new Response(null, { status: CLIENT_CLOSED_REQUEST });
  let type: ErrorType;
  let status: number;
  let message: string;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (isEngineError(e)) {
    ({ type, status, message } = e);
    if (e.retryAfterS !== undefined) headers["retry-after"] = String(e.retryAfterS);
  } else if (e instanceof HTTPException) {
    status = e.status;
    type = typeForStatus(status);
    message = e.message || "request failed";
  } else {
    status = 500;
    type = "internal_error";
    message = e instanceof Error ? e.message : String(e);
    log?.("error", "unhandled error", { path: path ?? null, error: message, stack: e instanceof Error ? e.stack : null });
  }
  return new Response(JSON.stringify(errorBody(type, message)), { status, headers });
}
