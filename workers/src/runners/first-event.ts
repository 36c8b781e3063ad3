import { IDLE, readWithIdle } from "../util/read-with-idle.js";

/**
 * Waits for the first complete SSE *data* event of a runner's stream (a `data:` line, then a
 * blank line), without losing any bytes: the returned stream replays what was read, then the
 * rest. Comment blocks (`: keep-alive`, the runner's heartbeat while a request waits) do not
 * count as the first event, but any byte counts as activity for `idleTimeoutMs`.
 * Resolves null when the stream ends, breaks or stays silent for `idleTimeoutMs` before one
 * complete data event: that runner produced no token, so the request can still fail over.
 */
export async function awaitFirstEvent(
  body: ReadableStream<Uint8Array>,
  opts: { idleTimeoutMs?: number } = {},
): Promise<ReadableStream<Uint8Array> | null> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const prefix: Uint8Array[] = [];
  let text = "";
  try {
    for (;;) {
      const read = await readWithIdle(reader, opts.idleTimeoutMs ?? 0);
      if (read === IDLE) {
        reader.cancel("idle before the first event").catch(() => {});
        return null;
      }
      if (read.done) return null;
      prefix.push(read.value);
      text += decoder.decode(read.value, { stream: true });
      if (hasCompleteDataEvent(text)) break;
    }
  } catch {
    return null;
  }
  let i = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (i < prefix.length) {
        controller.enqueue(prefix[i++]!);
        return;
      }
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (e) {
        controller.error(e);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** True when `text` holds a complete SSE event with at least one `data:` line. */
export function hasCompleteDataEvent(text: string): boolean {
  let rest = text;
  let idx: number;
  while ((idx = rest.search(/\r?\n\r?\n/)) >= 0) {
    const block = rest.slice(0, idx);
    if (block.split(/\r?\n/).some((line) => line.startsWith("data:"))) return true;
    rest = rest.slice(idx).replace(/^\r?\n\r?\n/, "");
  }
  return false;
}
