import type { Completion, Usage } from "#core/wire/runner-api";

export interface StreamOutcome {
  usage: Usage | null;
  /** Chunks that carried text (a fallback count of completion tokens when usage is absent). */
  textChunks: number;
  error: string | null;
}

const encoder = new TextEncoder();

/**
 * Passes a runner's SSE stream through to the client event by event, optionally rewriting
 * each JSON event (`map`: null drops it, an array sends several). Guarantees the stream ends with `data: [DONE]`:
 * if the runner's stream breaks, an `data: {"error": …}` event and `[DONE]` are appended.
 * `onDone` (usage accounting) runs with the outcome before the client sees the end of the
 * stream, so a client that read `[DONE]` observes its usage recorded.
 */
export function passThroughSse(
  upstream: ReadableStream<Uint8Array>,
  opts: {
    /** Rewrites one event into none (null), one, or several (an array) events. */
    map?: ((event: Completion) => unknown) | null;
    onDone?: (outcome: StreamOutcome) => Promise<void>;
    /** For work that must outlive a cancelled stream (ctx.waitUntil). */
    waitUntil?: (p: Promise<unknown>) => void;
  } = {},
): ReadableStream<Uint8Array> {
  const map = opts.map ?? null;
  const finish = async () => {
    try {
      await opts.onDone?.(outcome);
    } catch {
      // accounting failures are logged by the callback; the stream still ends cleanly
    }
  };
  const decoder = new TextDecoder();
  const outcome: StreamOutcome = { usage: null, textChunks: 0, error: null };
  let buffer = "";

  /** Forwards one event; true when something was enqueued. */
  const emitEvent = (controller: ReadableStreamDefaultController<Uint8Array>, raw: string): boolean => {
    const data = raw
      .split(/\r?\n/)
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).replace(/^ /, ""))
      .join("\n");
    if (data === "") return false;
    if (data === "[DONE]") {
      // Held back until accounting ran (see onDone); exactly one [DONE] ends the stream.
      return false;
    }
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      controller.enqueue(encoder.encode(`data: ${data}\n\n`));
      return true;
    }
    const e = event as Partial<Completion> & { error?: { message?: string } };
    if (e.error) outcome.error = e.error.message ?? "runner error";
    if (e.usage) outcome.usage = e.usage;
    if (e.choices?.[0]?.text) outcome.textChunks += 1;
    const out = map && !e.error ? map(e as Completion) : event;
    const events = out === null ? [] : Array.isArray(out) ? out : [out];
    for (const one of events) controller.enqueue(encoder.encode(`data: ${JSON.stringify(one)}\n\n`));
    return events.length > 0;
  };

  const reader = upstream.getReader();
  const stream = new ReadableStream<Uint8Array>({
    // A pull must enqueue something (or close), or the consumer's read never resolves: keep
    // reading the runner until at least one complete event went out.
    async pull(controller) {
      try {
        for (;;) {
          const { value, done: finished } = await reader.read();
          if (finished) {
            buffer += decoder.decode();
            if (buffer.trim() !== "") emitEvent(controller, buffer);
            buffer = "";
            await finish();
            controller.enqueue(encoder.encode("data: [DONE]\n\n"));
            controller.close();
            return;
          }
          buffer += decoder.decode(value, { stream: true });
          let emitted = 0;
          let idx: number;
          while ((idx = buffer.search(/\r?\n\r?\n/)) >= 0) {
            const raw = buffer.slice(0, idx);
            buffer = buffer.slice(idx).replace(/^\r?\n\r?\n/, "");
            if (emitEvent(controller, raw)) emitted++;
          }
          if (emitted > 0) return;
        }
      } catch (err) {
        outcome.error = err instanceof Error ? err.message : String(err);
        controller.enqueue(
          encoder.encode(
            `data: ${JSON.stringify({ error: { type: "runner_error", message: `runner stream failed: ${outcome.error}` } })}\n\n`,
          ),
        );
        await finish();
        controller.enqueue(encoder.encode("data: [DONE]\n\n"));
        controller.close();
      }
    },
    cancel(reason) {
      outcome.error = "client disconnected";
      const p = finish();
      opts.waitUntil?.(p);
      return reader.cancel(reason);
    },
  });
  return stream;
}
