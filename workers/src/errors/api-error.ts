/**
 * Every error the API returns: `{"error": {"type", "message"}}`, `type` from the one error
 * vocabulary (core/src/wire/errors.ts), which fixes its HTTP status.
 * Handlers throw ApiError; the app's onError turns it into the response.
 */
import { errorBody, statusOf, type ErrorStatus, type ErrorType } from "#core/wire/errors";

export type { ErrorStatus, ErrorType };

export class ApiError extends Error {
  readonly status: ErrorStatus;
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = statusOf(type);
  }

  body(): { error: { type: string; message: string } } {
    return errorBody(this.type, this.message);
  }
}

const retryAfter = (seconds: number | undefined): Record<string, string> =>
  seconds === undefined ? {} : { "retry-after": String(Math.max(1, Math.ceil(seconds))) };

export const badRequest = (message: string) => new ApiError("invalid_request_error", message);
export const unauthorized = (message: string) =>
  new ApiError("authentication_error", message, { "www-authenticate": 'Bearer realm="loraedge"' });
export const forbidden = (message: string) => new ApiError("permission_error", message);
export const notFound = (message: string) => new ApiError("not_found_error", message);
export const conflict = (message: string) => new ApiError("conflict_error", message);
export const payloadTooLarge = (message: string) => new ApiError("payload_too_large_error", message);
export const unprocessable = (message: string) => new ApiError("unprocessable_entity_error", message);
export const tooManyRequests = (message: string, retryAfterSeconds: number) =>
  new ApiError("rate_limit_error", message, retryAfter(retryAfterSeconds));
export const serviceUnavailable = (message: string, retryAfterSeconds?: number) =>
  new ApiError("service_unavailable_error", message, retryAfter(retryAfterSeconds));
