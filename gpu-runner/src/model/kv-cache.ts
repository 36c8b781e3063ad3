import type { KvCache } from "./types.js";

/** Capacity grows in blocks of this many tokens. */
const BLOCK = 64;

function roundUp(n: number, block: number): number {
  return Math.ceil(n / block) * block;
}

/**
 * Growable storage shared by a row's successive caches: per layer, keys and values
 * [heads, capacity, headDim]. `used` is how far the newest cache on this store reaches.
 */
export class KvStore {
  constructor(
    readonly heads: number,
    readonly headDim: number,
    readonly capacity: number,
    /** [layer] → [heads, capacity, headDim] */
    readonly keys: Float32Array[],
    /** [layer] → [heads, capacity, headDim] */
    readonly values: Float32Array[],
    public used: number,
  ) {}

  static create(layers: number, heads: number, headDim: number, capacity: number): KvStore {
    const alloc = () => Array.from({ length: layers }, () => new Float32Array(heads * capacity * headDim));
    return new KvStore(heads, headDim, capacity, alloc(), alloc(), 0);
  }

  get bytes(): number {
    return 2 * this.keys.length * this.heads * this.capacity * this.headDim * 4;
  }
}

/**
 * One row's key/value cache: the first `length` entries of a KvStore. Immutable from the
 * outside: stepping a cache appends in place only when it is the newest cache of its store,
 * otherwise (a fork: the same cache stepped twice) the prefix is copied first.
 */
export class RowKvCache implements KvCache {
  constructor(
    /** The model variant that produced it: caches never cross variants. */
    readonly owner: object,
    readonly length: number,
    readonly store: KvStore,
  ) {}

  /** Bytes of the store it holds (capacity, shared with the row's earlier caches). */
  get bytes(): number {
    return this.store.bytes;
  }

  /** Keys of one layer, [heads, length, headDim] (a copy; for tests and tools). */
  layerKeys(layer: number): Float32Array {
    return compact(this.store.keys[layer], this.store, this.length);
  }

  layerValues(layer: number): Float32Array {
    return compact(this.store.values[layer], this.store, this.length);
  }
}

function compact(src: Float32Array, store: KvStore, length: number): Float32Array {
  const { heads, headDim, capacity } = store;
  const out = new Float32Array(heads * length * headDim);
  for (let h = 0; h < heads; h++) out.set(src.subarray(h * capacity * headDim, (h * capacity + length) * headDim), h * length * headDim);
  return out;
}

/**
 * Writes a row's cache into a batched past tensor at batch index `row`, left-aligned.
 * Semantics: past[row, h, t, :] = cache[h, t, :] for t < length; the rest stays zero.
 * `past` is [batch, heads, P, headDim] starting at `pastOffset`.
 */
export function gatherRow(past: Float32Array, pastOffset: number, row: number, P: number, source: Float32Array, store: KvStore, length: number): void {
  const { heads, headDim, capacity } = store;
  for (let h = 0; h < heads; h++) {
    const src = h * capacity * headDim;
    past.set(source.subarray(src, src + length * headDim), pastOffset + (row * heads + h) * P * headDim);
  }
}

/** Where a row's new entries sit in a graph output [batch, heads, X, headDim] (from `offset`). */
export interface NewEntries {
  keys: Float32Array[];
  values: Float32Array[];
  /** Byte-free element offsets of the value tensors (stacked layouts keep K and V in one tensor). */
  valueOffset: number;
  /** X: the output's sequence extent. */
  extent: number;
  /** First sequence slot of the new entries (P for full presents, 0 for new-only outputs). */
  start: number;
}

/**
 * The row's cache after appending its n new entries.
 * Semantics: new cache[h, t] = cache[h, t] for t < L; = out[row, h, start + t − L] for L ≤ t < L + n.
 */
export function appendRow(owner: object, cache: RowKvCache | null, layers: number, heads: number, headDim: number, row: number, n: number, entries: NewEntries): RowKvCache {
  const L = cache?.length ?? 0;
  const needed = L + n;
  let store: KvStore;
  if (cache && cache.store.used === L && needed <= cache.store.capacity) {
    store = cache.store; // newest cache of its store: append in place
  } else {
    const capacity = roundUp(cache ? Math.max(needed, Math.ceil(L * 1.5)) : needed, BLOCK);
    store = KvStore.create(layers, heads, headDim, capacity);
    if (cache) {
      const old = cache.store;
      for (let layer = 0; layer < layers; layer++) {
        for (let h = 0; h < heads; h++) {
          const src = h * old.capacity * headDim;
          store.keys[layer].set(old.keys[layer].subarray(src, src + L * headDim), h * capacity * headDim);
          store.values[layer].set(old.values[layer].subarray(src, src + L * headDim), h * capacity * headDim);
        }
      }
    }
  }
  const { capacity } = store;
  for (let layer = 0; layer < layers; layer++) {
    for (let h = 0; h < heads; h++) {
      const src = ((row * heads + h) * entries.extent + entries.start) * headDim;
      const dst = (h * capacity + L) * headDim;
      store.keys[layer].set(entries.keys[layer].subarray(src, src + n * headDim), dst);
      store.values[layer].set(entries.values[layer].subarray(entries.valueOffset + src, entries.valueOffset + src + n * headDim), dst);
    }
  }
  store.used = needed;
  return new RowKvCache(owner, needed, store);
}
