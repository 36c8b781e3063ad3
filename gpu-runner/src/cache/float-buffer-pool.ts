/**
 * Float32 buffers of values that left, handed out again for the next value of the same length:
 * composing a mix into them skips what fresh memory costs (zeroing, first touch of its pages, the
 * garbage collector's work on large external buffers). Not a cache: nothing here is looked up by
 * identity or leased; a buffer is either handed out (owned by its taker) or free.
 *
 * Semantics:
 * - `take(length)` returns an array of exactly `length` floats nobody else holds: the free one of
 *   that length given back most recently, else a fresh `new Float32Array(length)`. Its contents are
 *   unspecified.
 * - `give(arrays)` frees arrays the caller owned and no longer reads (nor lets anyone read): each
 *   is kept, dropping the oldest free buffers (to the garbage collector) while the free bytes would
 *   exceed `capBytes()` (asked at every give); an array larger than the cap by itself is dropped.
 * Cost: O(1) per take, O(arrays + dropped) per give; memory: at most `capBytes()` of free buffers.
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
  /** Every free buffer, oldest given first (a Set keeps insertion order). */
  private readonly byAge = new Set<Float32Array>();
  private freeBytes = 0;
  private readonly counters = { reused: 0, fresh: 0 };

  constructor(private readonly capBytes: () => number) {}

  take(length: number): Float32Array {
    const list = this.free.get(length);
    const array = list?.pop();
    if (array === undefined) {
      this.counters.fresh++;
      return new Float32Array(length);
    }
    if (list!.length === 0) this.free.delete(length);
    this.byAge.delete(array);
    this.freeBytes -= array.byteLength;
    this.counters.reused++;
    return array;
  }

  give(arrays: Iterable<Float32Array>): void {
    const cap = this.capBytes();
    for (const array of arrays) {
      if (array.byteLength > cap) continue;
      while (this.freeBytes + array.byteLength > cap) this.dropOldest();
      let list = this.free.get(array.length);
      if (!list) this.free.set(array.length, (list = []));
      list.push(array);
      this.byAge.add(array);
      this.freeBytes += array.byteLength;
    }
  }

  /** Drops every free buffer (to the garbage collector). */
  clear(): void {
    this.free.clear();
    this.byAge.clear();
    this.freeBytes = 0;
  }

  stats(): FloatBufferPoolStats {
    return { freeBytes: this.freeBytes, freeBuffers: this.byAge.size, ...this.counters };
  }

  /** The oldest free buffer is the first of its length's list (lists are in give order too). */
  private dropOldest(): void {
    const oldest = this.byAge.values().next().value!;
    const list = this.free.get(oldest.length)!;
    list.shift();
    if (list.length === 0) this.free.delete(oldest.length);
    this.byAge.delete(oldest);
    this.freeBytes -= oldest.byteLength;
  }
}
