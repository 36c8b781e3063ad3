import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { typeForStatus } from "#core/wire/errors";
import { ApiError } from "./api-error.js";
import { log } from "../logging/log.js";

/** Turns anything thrown by a handler into the JSON error body. Unknown errors are 500 and logged. */
export function errorResponse(err: unknown, c: Context): Response {
  let apiError: ApiError;
  let status: number;
  if (err instanceof ApiError) {
    apiError = err;
    status = err.status;
  } else if (err instanceof HTTPException) {
    // A framework error (e.g. a body limit): the vocabulary's type for its status, the status kept.
    apiError = new ApiError(typeForStatus(err.status), err.message || "request failed");
    status = err.status;
  } else {
    log("error", "unhandled error", {
      request_id: c.get("requestId"),
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    apiError = new ApiError("internal_error", "internal error");
    status = 500;
  }
  return new Response(JSON.stringify(apiError.body()), {
    status,
    headers: { "content-type": "application/json", ...apiError.headers },
  });
}
