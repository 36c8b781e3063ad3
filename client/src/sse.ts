import { LoraedgeError } from "./api-error.js";

/**
 * The `data:` payloads of a `text/event-stream` body, one per event, in order, ending at
 * `data: [DONE]` (or at the end of the body). Multi-line data is joined with "\n"; comment
 * lines (`:`) and other fields (`event:`, `id:`) are skipped. Events may be split across
 * chunks anywhere, CR LF or LF line ends. `keepDone`: yield the `[DONE]` payload too before
 * ending (for callers that check how a stream ended).
 */
export async function* sseData(body: ReadableStream<Uint8Array>, options: { keepDone?: boolean } = {}): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, "");
        buffer = buffer.slice(newline + 1);
        if (line === "") {
          if (data.length) {
            const payload = data.join("\n");
            data = [];
            if (payload === "[DONE]") {
              if (options.keepDone) yield payload;
              return;
            }
            yield payload;
          }
        } else if (line.startsWith("data:")) {
          data.push(line.slice(5).replace(/^ /, ""));
        }
      }
      if (done) {
        if (buffer.startsWith("data:")) data.push(buffer.slice(5).replace(/^ /, ""));
        const payload = data.join("\n");
        if (payload !== "" && (payload !== "[DONE]" || options.keepDone)) yield payload;
        return;
      }
    }
  } finally {
    // Stops the download when the consumer breaks out early.
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * The JSON events of an SSE stream of the API. An `{"error": {type, message}}` event (the
 * runner failed after the stream started) throws a LoraedgeError with `status` 502.
 */
export async function* sseJson<T>(body: ReadableStream<Uint8Array>, requestId: string | null = null): AsyncGenerator<T> {
  for await (const payload of sseData(body)) {
    let event: unknown;
    try {
      event = JSON.parse(payload);
    } catch {
      throw new LoraedgeError(502, "invalid_response", `stream event is not JSON: ${payload.slice(0, 200)}`, requestId);
    }
    const error = (event as { error?: { type?: unknown; message?: unknown } }).error;
    if (error && typeof error === "object") {
      throw new LoraedgeError(
        502,
        typeof error.type === "string" ? error.type : "runner_error",
        typeof error.message === "string" ? error.message : "stream failed",
        requestId,
      );
    }
    yield event as T;
  }
}
