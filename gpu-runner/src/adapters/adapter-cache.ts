/**
 * Parsed adapters in memory: fetched from an AdapterSource by id, verified against the
 * sha256 the edge sent with the request, parsed with core, kept in the runner's leased LRU
 * (`../cache/leased-lru.ts`) bounded by the bytes of their Float32 A/B tensors.
 *
 * - Keyed by (id, sha256): the parsed adapter depends on adapter_config.json (alpha,
 *   rank_pattern, use_rslora, …), which the blob's sha256 does not cover, so the same bytes
 *   under two ids (possibly with different configs) are two entries.
 * - Concurrent misses for one (id, sha256) share one fetch (single flight).
 * - A corrupt or mismatching blob fails every request waiting on it and is never cached.
 * - An adapter is leased while a request uses it (acquire → release) and never evicted while
 *   leased; an adapter larger than the whole budget is served and dropped when released.
 * - The arrays the parse converts into (F16/BF16 tensors) come from the cache's free buffers
 *   (`FloatBufferPool`): an evicted adapter gives its arrays back (it is never leased then, and
 *   nothing outside a lease reads an adapter's tensors), the next parse overwrites them, so a runner
 *   whose cache turns over converts into memory already touched instead of fresh pages (bench case
 *   6). Fresh ones are plain uninitialized arrays (`uninitializedFloat32`), each its own buffer.
 *   Free buffers are kept up to twice the largest adapter parsed since the last idle release that
 *   fits the budget (an adapter too big for the budget, served once and dropped, sets nothing), the
 *   oldest dropped first; all are dropped after ADAPTER_BUFFERS_IDLE_RELEASE_MS without a parse or
 *   an eviction. /metrics shows their bytes (loraedge_runner_adapter_buffer_pool_bytes).
 * The LRU, single flight and leases are the primitive's; this file adds the fetch, the
 * integrity check, the parse, the recycling of converted arrays and the listing.
 */
import { createHash } from "node:crypto";
import type { LoraAdapter } from "#core/lora/types";
import type { Float32Alloc } from "#core/dtype/float32-alloc";
import { FloatBufferPool } from "../cache/float-buffer-pool.js";
import { LeasedLru } from "../cache/leased-lru.js";
import { EngineError } from "../engine/errors.js";
import type { Logger } from "../engine/logger.js";
import { silentLogger } from "../engine/logger.js";
import type { AdapterSource } from "./edge-source.js";
import { uninitializedFloat32 } from "./parse-adapter.js";

/**
 * Turns the two PEFT files into an adapter; throws on malformed or unsupported files. Tensors it
 * converts go into `alloc(n)` (contents unspecified: every element must be written), whose arrays
 * the cache takes back when the adapter leaves (`parseAdapter` in the runner).
 */
export type AdapterParser = (configJson: string, safetensors: Uint8Array, alloc: Float32Alloc) => LoraAdapter;

export interface AdapterCacheOptions {
  budgetBytes: number;
  parse: AdapterParser;
  log?: Logger;
  /** Free converted-tensor buffers are dropped after this long without a parse or eviction (default ADAPTER_BUFFERS_IDLE_RELEASE_MS). */
  buffersIdleReleaseMs?: number;
}

/** How long the adapter cache keeps free converted-tensor buffers with no parse or eviction (as ComposedMixPool's). */
export const ADAPTER_BUFFERS_IDLE_RELEASE_MS = 30_000;

export interface AdapterLease {
  adapter: LoraAdapter;
  /** Call once when the request no longer needs the adapter. */
  release(): void;
}

/** What the LRU holds per (id, sha256). */
interface CachedAdapter {
  id: string;
  sha256: string;
  adapter: LoraAdapter;
  /** The arrays the parse took from the free buffers: given back when the adapter leaves the cache. */
  owned: Float32Array[];
}

export interface AdapterCacheEntryInfo {
  sha256: string;
  ids: string[];
  bytes: number;
  pinned: number;
  hits: number;
  modules: number;
  maxRank: number;
  fetched_at: string;
  last_used: string;
}

export interface AdapterCacheStats {
  budgetBytes: number;
  bytes: number;
  entries: number;
  hitsTotal: number;
  missesTotal: number;
  fetchesTotal: number;
  fetchFailuresTotal: number;
  evictionsTotal: number;
  /** Free converted-tensor buffers of evicted adapters, kept for the next parses. */
  freeBufferBytes: number;
  /** Arrays parses took from those free buffers instead of fresh memory. */
  bufferReusesTotal: number;
}

/** Bytes held by an adapter's tensors. */
export function adapterBytes(adapter: LoraAdapter): number {
  let n = 0;
  for (const m of adapter.modules.values()) n += m.a.byteLength + m.b.byteLength;
  return n;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** One entry per adapter id and blob: an id's files are immutable, its config is part of what is parsed. */
const cacheKey = (id: string, sha256: string) => `${sha256}\n${id}`;

export class AdapterCache {
  private readonly lru: LeasedLru<CachedAdapter>;
  private readonly log: Logger;
  private readonly parse: AdapterParser;
  private readonly budgetBytes: number;
  /** Converted tensors of adapters that left, for the next parses (fresh ones uninitialized). */
  private readonly buffers: FloatBufferPool;
  /** Converted bytes of the largest adapter within the budget parsed since the last idle release. */
  private largestOwnedBytes = 0;

  constructor(
    private readonly source: AdapterSource | null,
    options: AdapterCacheOptions,
  ) {
    this.log = options.log ?? silentLogger;
    this.budgetBytes = options.budgetBytes;
    this.parse = options.parse;
    this.buffers = new FloatBufferPool(() => 2 * this.largestOwnedBytes, {
      fresh: uninitializedFloat32,
      idleReleaseMs: options.buffersIdleReleaseMs ?? ADAPTER_BUFFERS_IDLE_RELEASE_MS,
      onIdleRelease: () => (this.largestOwnedBytes = 0),
    });
    this.lru = new LeasedLru<CachedAdapter>({
      budgetBytes: options.budgetBytes,
      sizeOf: (c) => adapterBytes(c.adapter),
      onEvict: (_key, c) => {
        this.buffers.give(c.owned);
        this.log("debug", "adapter evicted", { sha256: c.sha256, ids: [c.id], bytes: adapterBytes(c.adapter) });
      },
    });
  }

  /** The adapter `id` whose blob must hash to `sha256`, pinned until `release()`. */
  async acquire(id: string, sha256: string): Promise<AdapterLease> {
    const key = cacheKey(id, sha256);
    if (!this.source && !this.lru.has(key)) {
      throw new EngineError("service_unavailable_error", `adapter ${id} is not cached and no edge URL is configured (RUNNER_EDGE_URL)`);
    }
    // A miss without a source was refused above: `load` runs only with one.
    const lease = await this.lru.acquire(key, () => this.load(this.source!, id, sha256));
    return { adapter: lease.value.adapter, release: lease.release };
  }

  private async load(source: AdapterSource, id: string, sha256: string): Promise<CachedAdapter> {
    const started = performance.now();
    try {
      const files = await source.fetchAdapter(id);
      const actual = sha256Hex(files.safetensors);
      if (actual !== sha256) {
        throw new EngineError(
          "adapter_integrity_error",
          `adapter ${id}: the blob fetched from the edge has sha256 ${actual}, the request expects ${sha256} (${files.safetensors.byteLength} bytes; not cached)`,
        );
      }
      if (files.announcedSha256 !== null && files.announcedSha256.toLowerCase() !== sha256) {
        throw new EngineError(
          "adapter_integrity_error",
          `adapter ${id}: the edge announced sha256 ${files.announcedSha256} but the request expects ${sha256} (not cached)`,
        );
      }
      let adapter: LoraAdapter;
      const owned: Float32Array[] = [];
      try {
        adapter = this.parse(files.configJson, files.safetensors, (length) => {
          const array = this.buffers.take(length);
          owned.push(array);
          return array;
        });
      } catch (e) {
        this.buffers.give(owned); // the failed parse's arrays: nothing holds them
        throw new EngineError(
          "invalid_adapter",
          `adapter ${id} cannot be loaded: ${(e as Error).message}`,
        );
      }
      this.log("info", "adapter cached", {
        adapter: id,
        sha256,
        bytes: adapterBytes(adapter),
        fetchMs: Math.round(performance.now() - started),
      });
      // An adapter over the whole budget is served once and dropped: it must not size the free buffers.
      if (adapterBytes(adapter) <= this.budgetBytes) this.largestOwnedBytes = Math.max(this.largestOwnedBytes, owned.reduce((n, a) => n + a.byteLength, 0));
      return { id, sha256, adapter, owned };
    } catch (e) {
      this.log("warn", "adapter fetch failed", { adapter: id, sha256, error: (e as Error).message });
      throw e;
    }
  }

  bytes(): number {
    return this.lru.bytes;
  }

  /** Whether some adapter with this blob is cached. */
  has(sha256: string): boolean {
    return this.lru.list().some((e) => e.value.sha256 === sha256);
  }

  /** Most recently used first. */
  list(): AdapterCacheEntryInfo[] {
    return this.lru
      .list()
      .reverse()
      .map((e) => ({
        sha256: e.value.sha256,
        ids: [e.value.id],
        bytes: e.bytes,
        pinned: e.pins,
        hits: e.leases,
        modules: e.value.adapter.modules.size,
        maxRank: Math.max(0, ...[...e.value.adapter.modules.values()].map((m) => m.rank)),
        fetched_at: new Date(e.insertedAt).toISOString(),
        last_used: new Date(e.lastUsed).toISOString(),
      }));
  }

  /**
   * Evicts the entries matching an id or a sha256. Pinned entries stay (reported in `pinned`).
   */
  evict(idOrSha: string): { evicted: string[]; pinned: string[] } {
    const { evicted, pinned } = this.lru.evict((_key, c) => c.sha256 === idOrSha || c.id === idOrSha);
    const shas = (list: typeof evicted) => list.map((e) => e.value.sha256);
    return { evicted: shas(evicted), pinned: shas(pinned) };
  }

  stats(): AdapterCacheStats {
    const s = this.lru.stats();
    return {
      budgetBytes: s.budgetBytes,
      bytes: s.bytes,
      entries: s.entries,
      hitsTotal: s.hits,
      missesTotal: s.misses,
      fetchesTotal: s.loads,
      fetchFailuresTotal: s.loadFailures,
      evictionsTotal: s.evictions,
      freeBufferBytes: this.buffers.stats().freeBytes,
      bufferReusesTotal: this.buffers.stats().reused,
    };
  }
}
