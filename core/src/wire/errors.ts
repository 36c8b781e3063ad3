/**
 * The one error vocabulary of loraedge, shared by the edge worker and the runner.
 *
 * Every error either side returns is `{"error": {"type", "message"}}` (errorBodySchema in
 * ./runner-api.ts) with `type` one of ERROR_TYPES' keys, and the HTTP status that type maps
 * to here (one status per type). Each type also carries its FAULT CLASS, which tells the edge
 * what a runner's answer of that type means for routing:
 *
 *   "request"   the request itself is wrong (bad input, too long, incompatible adapter):
 *               returned to the client as is; the runner stays healthy; no fail-over.
 *   "runner"    the runner is at fault (crashed step, loading, draining, hung, garbage answer):
 *               the edge fails over to the next runner and marks this one down.
 *   "busy"      this runner cannot take the request now (queue full, model not loaded here):
 *               the edge tries the next runner; this one is NOT marked down.
 *   "upstream"  a dependency of the runner failed (the adapter fetch from the edge, a blob
 *               whose bytes do not match its sha256): the request fails (another runner would
 *               fetch the same blob), the runner stays healthy.
 *
 * Types answered only by the edge (authentication, rate limits…) are classed as "request";
 * their class only matters when a runner returns them.
 */
export type FaultClass = "request" | "runner" | "busy" | "upstream";

export interface ErrorTypeSpec {
  status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503 | 504;
  fault: FaultClass;
}

export const ERROR_TYPES = {
  // --- the request's fault
  invalid_request_error: { status: 400, fault: "request" },
  context_length_exceeded: { status: 400, fault: "request" },
  authentication_error: { status: 401, fault: "request" },
  permission_error: { status: 403, fault: "request" },
  not_found_error: { status: 404, fault: "request" },
  conflict_error: { status: 409, fault: "request" },
  payload_too_large_error: { status: 413, fault: "request" },
  unsupported_media_type_error: { status: 415, fault: "request" },
  unprocessable_entity_error: { status: 422, fault: "request" },
  /** The adapter's files cannot be parsed. */
  invalid_adapter: { status: 422, fault: "request" },
  /** The adapter does not fit the base model's targets. */
  incompatible_adapter: { status: 422, fault: "request" },
  /** The tenant's rate or token limit (edge only). */
  rate_limit_error: { status: 429, fault: "request" },
  // --- this runner cannot take it now; another may
  /** The runner's queue is full (Retry-After). */
  overloaded: { status: 429, fault: "busy" },
  /** The runner does not serve the requested model (the edge's catalogue was stale). */
  model_not_found: { status: 404, fault: "busy" },
  // --- a dependency of the runner failed
  /** Fetching an adapter from the edge failed. */
  adapter_unavailable: { status: 502, fault: "upstream" },
  /** The fetched adapter's bytes do not match the sha256 the request named. */
  adapter_integrity_error: { status: 502, fault: "upstream" },
  // --- the runner's fault
  internal_error: { status: 500, fault: "runner" },
  /** A runner answered something the edge cannot use (edge only). */
  runner_error: { status: 502, fault: "runner" },
  /** Loading, draining, or no healthy runner left (Retry-After). */
  service_unavailable_error: { status: 503, fault: "runner" },
  /** A runner did not answer in time: no headers within the time-to-headers timeout, or an open stream went idle. */
  runner_timeout: { status: 504, fault: "runner" },
} as const satisfies Record<string, ErrorTypeSpec>;

export type ErrorType = keyof typeof ERROR_TYPES;
export type ErrorStatus = (typeof ERROR_TYPES)[ErrorType]["status"];
export type StatusOf<T extends ErrorType> = (typeof ERROR_TYPES)[T]["status"];

export function isErrorType(type: unknown): type is ErrorType {
  return typeof type === "string" && Object.hasOwn(ERROR_TYPES, type);
}

export function statusOf<T extends ErrorType>(type: T): StatusOf<T> {
  return ERROR_TYPES[type].status;
}

export function faultOf(type: ErrorType): FaultClass {
  return ERROR_TYPES[type].fault;
}

/**
 * The fault class of an answer whose body named no known type: by status, the way an HTTP
 * client would read it (429 busy, other 4xx the request's, 5xx the runner's).
 */
export function faultOfStatus(status: number): FaultClass {
  if (status === 429) return "busy";
  if (status >= 400 && status < 500) return "request";
  return "runner";
}

/** The type a bare HTTP status stands for (a framework's own error, e.g. a 413 from a body limit). */
export function typeForStatus(status: number): ErrorType {
  for (const [type, spec] of Object.entries(ERROR_TYPES) as [ErrorType, ErrorTypeSpec][]) {
    if (spec.status === status && spec.fault === (status >= 500 ? "runner" : "request")) return type;
  }
  return status >= 500 ? "internal_error" : "invalid_request_error";
}

export function errorBody(type: ErrorType, message: string): { error: { type: ErrorType; message: string } } {
  return { error: { type, message } };
}

/**
 * Reads an error answer (`{"error": {"type", "message"}}`, or anything else): its type when
 * the vocabulary knows it, the message when one was given, and the fault class (from the
 * type, else from the status).
 */
export function readErrorAnswer(status: number, text: string): { type: ErrorType | null; message: string | null; fault: FaultClass } {
  let type: ErrorType | null = null;
  let message: string | null = null;
  try {
    const parsed = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } };
    if (isErrorType(parsed?.error?.type)) type = parsed.error.type;
    if (typeof parsed?.error?.message === "string") message = parsed.error.message;
  } catch {
    // not JSON: no type, no message
  }
  return { type, message, fault: type ? faultOf(type) : faultOfStatus(status) };
}
