import { errorBody, faultOf, isErrorType } from "#core/wire/errors";
import { SAMPLED_TOKENS_FIELD, type Completion, type CompletionChunk, type Usage } from "#core/wire/runner-api";
import { IDLE, readWithIdle } from "../util/read-with-idle.js";

export interface StreamOutcome {
  usage: Usage | null;
  /** Chunks that carried text (the last-resort count of completion tokens). */
  textChunks: number;
  /** The runner's count of tokens sampled so far (`sampled_tokens` of the last chunk that had it). */
  sampledTokens: number | null;
  error: string | null;
}

/** Completion tokens a stream is billed for: the usage chunk, else the runner's running count, else text chunks. */
export function billedCompletionTokens(o: StreamOutcome): number {
  return o.usage?.completion_tokens ?? o.sampledTokens ?? o.textChunks;
}

const encoder = new TextEncoder();

export interface PassThroughOptions {
  /** Rewrites one event into none (null), one, or several (an array) events. */
  map?: ((event: Completion) => unknown) | null;
  /** Accounting; runs exactly once per stream, whichever way it ends. */
  onDone?: (outcome: StreamOutcome) => Promise<void>;
  /** For work that must outlive a cancelled stream (ctx.waitUntil). */
  waitUntil?: (p: Promise<unknown>) => void;
  /** No event from the runner for this long ends the stream with an error (0/undefined: never). */
  idleTimeoutMs?: number;
  /** Called once when the idle timeout ended the stream (the edge marks the runner suspect). */
  onIdle?: () => void;
}

/**
 * Passes a runner's SSE stream through to the client event by event, optionally rewriting
 * each JSON event (`map`: null drops it, an array sends several) and stripping the runner's `sampled_tokens`.
 * Guarantees the stream ends with exactly one `data: [DONE]`: if the runner's stream breaks,
 * closes without its own `[DONE]` (a killed process), or sends nothing for `idleTimeoutMs`,
 * a `data: {"error": …}` event and `[DONE]` are appended.
 *
 * Semantics of billing: `onDone` runs exactly once (idempotent finish), whether the stream
 * ended, broke, went idle or the client disconnected (cancel() and a pending pull() both
 * reach it); it runs before the client sees the end of the stream, so a client that read
 * `[DONE]` observes its usage recorded.
 */
export function passThroughSse(upstream: ReadableStream<Uint8Array>, opts: PassThroughOptions = {}): ReadableStream<Uint8Array> {
  const map = opts.map ?? null;
  const outcome: StreamOutcome = { usage: null, textChunks: 0, sampledTokens: null, error: null };
  let finished: Promise<void> | null = null;
  const finish = (): Promise<void> =>
    (finished ??= (async () => {
      try {
        await opts.onDone?.(outcome);
      } catch {
        // accounting failures are logged by the callback; the stream still ends cleanly
      }
    })());
  const decoder = new TextDecoder();
  let buffer = "";
  /** The runner sent its own [DONE] (a complete stream). */
  let upstreamDone = false;

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
      upstreamDone = true;
      return false;
    }
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      controller.enqueue(encoder.encode(`data: ${data}\n\n`));
      return true;
    }
    const e = event as Partial<CompletionChunk> & { error?: { type?: unknown; message?: string } };
    if (e.error) {
      outcome.error = e.error.message ?? "runner error";
      // A runner's or upstream fault mid-stream: the type goes out, the runner's own words do not.
      if (isErrorType(e.error.type) && faultOf(e.error.type) !== "request") e.error.message = "the runner failed while generating";
    }
    if (e.usage) outcome.usage = e.usage;
    if (e.choices?.[0]?.text) outcome.textChunks += 1;
    if (typeof e[SAMPLED_TOKENS_FIELD] === "number") {
      outcome.sampledTokens = Math.max(outcome.sampledTokens ?? 0, e[SAMPLED_TOKENS_FIELD]);
      delete e[SAMPLED_TOKENS_FIELD];
    }
    const out = map && !e.error ? map(e as Completion) : event;
    const events = out === null ? [] : Array.isArray(out) ? out : [out];
    for (const one of events) controller.enqueue(encoder.encode(`data: ${JSON.stringify(one)}\n\n`));
    return events.length > 0;
  };

  /** Ends the client's stream with an error event, accounting, then [DONE]. */
  /** Ends the stream with `body` (what the client reads) and `[DONE]`; `detail` (default: its message) is what onDone logs. */
  const endWithError = async (controller: ReadableStreamDefaultController<Uint8Array>, body: ReturnType<typeof errorBody>, detail = body.error.message) => {
    outcome.error = detail;
    controller.enqueue(encoder.encode(`data: ${JSON.stringify(body)}\n\n`));
    await finish();
    controller.enqueue(encoder.encode("data: [DONE]\n\n"));
    controller.close();
  };

  const reader = upstream.getReader();
  const idleMs = opts.idleTimeoutMs ?? 0;

  return new ReadableStream<Uint8Array>({
    // A pull must enqueue something (or close), or the consumer's read never resolves: keep
    // reading the runner until at least one complete event went out.
    async pull(controller) {
      try {
        for (;;) {
          const read = await readWithIdle(reader, idleMs); // any bytes (events, keep-alive comments) count as activity
          if (read === IDLE) {
            reader.cancel("idle timeout").catch(() => {});
            opts.onIdle?.();
            await endWithError(
              controller,
              errorBody("runner_timeout", `the runner sent nothing for ${Math.round(idleMs / 1000)} s; the stream was ended`),
            );
            return;
          }
          const { value, done } = read;
          if (done) {
            // An event is complete only at its blank line (SSE): what is left was cut off mid-event
            // (a killed runner), and is dropped rather than forwarded half-written.
            buffer = "";
            if (!upstreamDone && outcome.error === null) {
              // Closed without [DONE] or an error event: the runner died (kill -9) mid-stream.
              await endWithError(controller, errorBody("runner_error", "the runner's stream ended before it was complete"));
              return;
            }
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
        if (finished) return; // the client went away (cancel): nothing more to send
        const why = err instanceof Error ? err.message : String(err);
        // The reason (a socket error naming hosts) goes to the log, never to the client.
        await endWithError(controller, errorBody("runner_error", "the runner's stream broke before it finished; the response is incomplete"), `runner stream failed: ${why}`);
      }
    },
    cancel(reason) {
      outcome.error ??= "client disconnected";
      opts.waitUntil?.(finish());
      return reader.cancel(reason);
    },
  });
}
