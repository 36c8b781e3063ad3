/**
 * Float32 buffers of values that left, handed out again for the next value of the same length:
 * composing a mix into them skips what fresh memory costs (zeroing, first touch of its pages, the
 * garbage collector's work on large external buffers). Not a cache: nothing here is looked up by
 * identity or leased; a buffer is either handed out (owned by its taker) or free.
 *
 * Semantics:
 * - `take(length)` returns an array of exactly `length` floats nobody else holds: the free one of
 *   that length given back most recently, else a fresh one (`fresh(length)`: the take's own, else
 *   the pool's, by default `new Float32Array(length)`). Its contents are unspecified.
 * - `give(arrays)` frees arrays the caller owned and no longer reads (nor lets anyone read): each
 *   is kept while the free bytes stay within `capBytes()` (asked at every give), else dropped to
 *   the garbage collector.
 * Cost: O(1) per take, O(arrays) per give; memory: at most `capBytes()` of free buffers.
 */
export interface FloatBufferPoolStats {
  /** Bytes of the free buffers kept now. */
  freeBytes: number;
  freeBuffers: number;
  /** Takes served from a free buffer / with fresh memory. */
  reused: number;
  fresh: number;
}

export class FloatBufferPool {
  /** Free buffers by length; the last one of a list was given back most recently. */
  private readonly free = new Map<number, Float32Array[]>();
  private freeBytes = 0;
  private freeBuffers = 0;
  private readonly counters = { reused: 0, fresh: 0 };

  constructor(
    private readonly capBytes: () => number,
    private readonly fresh: (length: number) => Float32Array = (length) => new Float32Array(length),
  ) {}

  take(length: number, fresh: (length: number) => Float32Array = this.fresh): Float32Array {
    const list = this.free.get(length);
    const array = list?.pop();
    if (array === undefined) {
      this.counters.fresh++;
      return fresh(length);
    }
    if (list!.length === 0) this.free.delete(length);
    this.freeBytes -= array.byteLength;
    this.freeBuffers--;
    this.counters.reused++;
    return array;
  }

  give(arrays: Iterable<Float32Array>): void {
    const cap = this.capBytes();
    for (const array of arrays) {
      if (this.freeBytes + array.byteLength > cap) continue;
      let list = this.free.get(array.length);
      if (!list) this.free.set(array.length, (list = []));
      list.push(array);
      this.freeBytes += array.byteLength;
      this.freeBuffers++;
    }
  }

  /** Drops every free buffer (to the garbage collector). */
  clear(): void {
    this.free.clear();
    this.freeBytes = 0;
    this.freeBuffers = 0;
  }

  stats(): FloatBufferPoolStats {
    return { freeBytes: this.freeBytes, freeBuffers: this.freeBuffers, ...this.counters };
  }
}
