import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, type ErrorStatus, type ErrorType } from "./api-error.js";
import { log } from "../logging/log.js";

const typeForStatus: Record<number, ErrorType> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  409: "conflict_error",
  413: "payload_too_large_error",
  415: "invalid_request_error",
  422: "unprocessable_entity_error",
  429: "rate_limit_error",
  503: "service_unavailable_error",
};

/** Turns anything thrown by a handler into the JSON error body. Unknown errors are 500 and logged. */
export function errorResponse(err: unknown, c: Context): Response {
  let apiError: ApiError;
  if (err instanceof ApiError) {
    apiError = err;
  } else if (err instanceof HTTPException) {
    const status = err.status as ErrorStatus;
    apiError = new ApiError(status, typeForStatus[status] ?? "internal_error", err.message || "request failed");
  } else {
    log("error", "unhandled error", {
      request_id: c.get("requestId"),
      error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      stack: err instanceof Error ? err.stack : undefined,
    });
    apiError = new ApiError(500, "internal_error", "internal error");
  }
  return new Response(JSON.stringify(apiError.body()), {
    status: apiError.status,
    headers: { "content-type": "application/json", ...apiError.headers },
  });
}
