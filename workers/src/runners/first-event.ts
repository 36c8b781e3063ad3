/**
 * Waits for the first complete SSE event of a runner's stream (a blank line after data),
 * without losing any bytes: the returned stream replays what was read, then the rest.
 * Resolves null when the stream ends or breaks before one complete event: that runner
 * produced no token, so the request can still fail over.
 */
export async function awaitFirstEvent(body: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array> | null> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const prefix: Uint8Array[] = [];
  let text = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return null;
      prefix.push(value);
      text += decoder.decode(value, { stream: true });
      if (/\r?\n\r?\n/.test(text)) break;
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
