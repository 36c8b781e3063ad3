/**
 * Errors the engine raises towards the HTTP layer: each carries the status and the
 * `{error: {type, message}}` type it maps to, and Retry-After seconds for overload.
 */
export type EngineErrorType =
  | "invalid_request"
  | "context_length_exceeded"
  | "model_not_found"
  | "overloaded"
  | "unavailable"
  | "adapter_unavailable"
  | "adapter_integrity_error"
  | "invalid_adapter"
  | "incompatible_adapter"
  | "internal_error";

export class EngineError extends Error {
  override readonly name = "EngineError";
  constructor(
    readonly status: 400 | 404 | 422 | 429 | 500 | 502 | 503,
    readonly type: EngineErrorType,
    message: string,
    /** Seconds a client should wait before retrying (429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
