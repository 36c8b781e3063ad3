/** What `readWithIdle` resolves with when nothing arrived in time. */
export const IDLE = Symbol("idle");

/**
 * One read of a stream, or IDLE when no chunk arrived within `idleMs` (≤ 0: wait forever).
 * The read stays pending after IDLE; the caller cancels the reader.
 */
export function readWithIdle<T>(reader: ReadableStreamDefaultReader<T>, idleMs: number): Promise<ReadableStreamReadResult<T> | typeof IDLE> {
  if (idleMs <= 0) return reader.read();
  let timer: ReturnType<typeof setTimeout> | null = null;
  const idle = new Promise<typeof IDLE>((resolve) => (timer = setTimeout(() => resolve(IDLE), idleMs)));
  return Promise.race([reader.read(), idle]).finally(() => {
    if (timer !== null) clearTimeout(timer);
  });
}
