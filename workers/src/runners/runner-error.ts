import { readErrorAnswer, type FaultClass } from "#core/wire/errors";
import { ApiError } from "../errors/api-error.js";

/** A runner's error answer, read through the shared vocabulary. */
export interface RunnerErrorAnswer {
  status: number;
  fault: FaultClass;
  /** What the client will get when this answer ends the request (request / upstream faults). */
  apiError: ApiError;
  /** For logs only: the runner's own words (may name internal paths and ids). */
  detail: string;
}

/**
 * Classifies a runner's error answer (status ≥ 400) by its type's fault class
 * (core/src/wire/errors.ts; by status when the type is unknown).
 *
 * Semantics of what the client sees:
 *   - request fault: the runner's type, status and message (they describe the client's own input);
 *   - upstream fault: the type with a fixed message — the runner's text names edge paths and blob
 *     digests, which clients never see;
 *   - runner / busy: never shown as such (the edge fails over; see dispatch.ts).
 */
export function readRunnerError(status: number, text: string, retryAfter: string | null): RunnerErrorAnswer {
  const answer = readErrorAnswer(status, text);
  const detail = (answer.message ?? text).slice(0, 500) || `status ${status}`;
  const headers: Record<string, string> = retryAfter ? { "retry-after": retryAfter } : {};
  let apiError: ApiError;
  if (answer.fault === "upstream") {
    apiError = new ApiError(
      answer.type ?? "adapter_unavailable",
      answer.type === "adapter_integrity_error"
        ? "an adapter of the mix failed its integrity check when the runner loaded it; retry later or re-upload it"
        : "an adapter of the mix could not be loaded from storage; retry later",
    );
  } else if (answer.fault === "request" && answer.type) {
    apiError = new ApiError(answer.type, answer.message ?? `the runner refused the request (${status})`, headers);
  } else if (answer.fault === "request") {
    // A 4xx without a known type: the request's fault, told as a bad request.
    apiError = new ApiError(status === 404 ? "not_found_error" : status === 422 ? "unprocessable_entity_error" : "invalid_request_error", answer.message ?? `the runner refused the request (${status})`);
  } else {
    apiError = new ApiError("runner_error", "the runner failed");
  }
  return { status, fault: answer.fault, apiError, detail };
}
