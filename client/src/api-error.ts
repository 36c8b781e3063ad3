/**
 * The one error class of the client: every non-2xx answer of the API (`{"error": {type, message}}`),
 * an error event inside an SSE stream, and a network failure reaching the edge.
 */
export class LoraedgeError extends Error {
  constructor(
    /** HTTP status; 0 when no HTTP answer came back (network failure). */
    readonly status: number,
    /** The API's error type (`not_found_error`, `rate_limit_error`, …); `network_error` / `invalid_response` from the client. */
    readonly type: string,
    message: string,
    /** The edge's `x-request-id`, when it sent one (quote it in bug reports). */
    readonly requestId: string | null = null,
    /** Seconds from `Retry-After` (429, 503), when sent. */
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "LoraedgeError";
  }
}

/** Builds the LoraedgeError for a non-2xx response, reading its `{"error": …}` body when it has one. */
export async function errorFromResponse(res: Response): Promise<LoraedgeError> {
  const text = await res.text().catch(() => "");
  let type = `http_${res.status}`;
  let message = text.trim() || res.statusText || `HTTP ${res.status}`;
  try {
    const body = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } };
    if (body?.error && typeof body.error.message === "string") {
      message = body.error.message;
      if (typeof body.error.type === "string") type = body.error.type;
    }
  } catch {
    /* not JSON: keep the text */
  }
  const retry = Number(res.headers.get("retry-after"));
  return new LoraedgeError(res.status, type, message, res.headers.get("x-request-id"), Number.isFinite(retry) && retry > 0 ? retry : null);
}
