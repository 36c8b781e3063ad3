/**
 * Every error the API returns: `{"error": {"type", "message"}}` with an HTTP status.
 * Handlers throw ApiError; the app's onError turns it into the response.
 */
export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "payload_too_large_error"
  | "unprocessable_entity_error"
  | "rate_limit_error"
  | "service_unavailable_error"
  | "runner_error"
  | "internal_error";

export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503;

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly type: ErrorType,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): { error: { type: string; message: string } } {
    return { error: { type: this.type, message: this.message } };
  }
}

export const badRequest = (message: string) => new ApiError(400, "invalid_request_error", message);
export const unauthorized = (message: string) =>
  new ApiError(401, "authentication_error", message, { "www-authenticate": 'Bearer realm="loraedge"' });
export const forbidden = (message: string) => new ApiError(403, "permission_error", message);
export const notFound = (message: string) => new ApiError(404, "not_found_error", message);
export const conflict = (message: string) => new ApiError(409, "conflict_error", message);
export const payloadTooLarge = (message: string) => new ApiError(413, "payload_too_large_error", message);
export const unprocessable = (message: string) => new ApiError(422, "unprocessable_entity_error", message);
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new ApiError(429, "rate_limit_error", message, { "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))) });
export const serviceUnavailable = (message: string, retryAfterSeconds?: number) =>
  new ApiError(
    503,
    "service_unavailable_error",
    message,
    retryAfterSeconds === undefined ? {} : { "retry-after": String(retryAfterSeconds) },
  );
