/**
 * Errors the engine raises towards the HTTP layer. The type comes from the one error
 * vocabulary (core/src/wire/errors.ts), which also fixes its HTTP status and fault class;
 * overload and unavailability carry Retry-After seconds.
 */
import { statusOf, type ErrorStatus, type ErrorType } from "#core/wire/errors";

export type EngineErrorType = ErrorType;

export class EngineError extends Error {
  override readonly name = "EngineError";
  readonly status: ErrorStatus;
  constructor(
    readonly type: ErrorType,
    message: string,
    /** Seconds a client should wait before retrying (429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.status = statusOf(type);
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError;
}
