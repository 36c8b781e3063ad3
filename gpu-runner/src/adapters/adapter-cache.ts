/**
 * Parsed adapters in memory: fetched from an AdapterSource by id, verified against the
 * sha256 the edge sent with the request, parsed with core, kept in the runner's leased LRU
 * (`../cache/leased-lru.ts`) bounded by the bytes their A/B tensors keep alive (`adapterBytes`: the
 * received blob their views live in — F32 values, or the 16-bit values of F16/BF16 files kept as they
 * are, `parse-adapter.ts` — header and metadata included).
 *
 * - Keyed by (id, sha256): the parsed adapter depends on adapter_config.json (alpha,
 *   rank_pattern, use_rslora, …), which the blob's sha256 does not cover, so the same bytes
 *   under two ids (possibly with different configs) are two entries.
 * - Concurrent misses for one (id, sha256) share one fetch (single flight).
 * - A corrupt or mismatching blob fails every request waiting on it and is never cached.
 * - An adapter is leased while a request uses it (acquire → release) and never evicted while
 *   leased; an adapter larger than the whole budget is served and dropped when released.
 * The LRU, single flight and leases are the primitive's; this file adds the fetch, the
 * integrity check, the parse and the listing.
 */
import { createHash } from "node:crypto";
import { HalfFactor, type LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import { LeasedLru } from "../cache/leased-lru.js";
import { EngineError } from "../engine/errors.js";
import type { Logger } from "../engine/logger.js";
import { silentLogger } from "../engine/logger.js";
import type { AdapterSource } from "./edge-source.js";

/** Turns the two PEFT files into an adapter; throws on malformed or unsupported files (`parseAdapter` in the runner). */
export type AdapterParser = (configJson: string, safetensors: Uint8Array) => LoraAdapter<LoraFactor>;

export interface AdapterCacheOptions {
  budgetBytes: number;
  parse: AdapterParser;
  log?: Logger;
}

export interface AdapterLease {
  adapter: LoraAdapter<LoraFactor>;
  /** Call once when the request no longer needs the adapter. */
  release(): void;
}

/** What the LRU holds per (id, sha256). */
interface CachedAdapter {
  id: string;
  sha256: string;
  adapter: LoraAdapter<LoraFactor>;
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
}

/**
 * Bytes an adapter keeps alive: every distinct buffer its factors live in, whole. The runner's factors
 * are views of the received blob (F32 values, or 2 bytes per F16/BF16 value kept 16-bit), so that is the
 * blob itself, header and `__metadata__` included; a factor copied out of it is its own buffer.
 */
export function adapterBytes(adapter: LoraAdapter<LoraFactor>): number {
  const buffers = new Set<ArrayBufferLike>();
  for (const m of adapter.modules.values()) for (const x of [m.a, m.b]) buffers.add(x instanceof HalfFactor ? x.bits.buffer : x.buffer);
  let n = 0;
  for (const b of buffers) n += b.byteLength;
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

  constructor(
    private readonly source: AdapterSource | null,
    options: AdapterCacheOptions,
  ) {
    this.log = options.log ?? silentLogger;
    this.parse = options.parse;
    this.lru = new LeasedLru<CachedAdapter>({
      budgetBytes: options.budgetBytes,
      sizeOf: (c) => adapterBytes(c.adapter),
      onEvict: (_key, c) => {
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
      let adapter: LoraAdapter<LoraFactor>;
      try {
        adapter = this.parse(files.configJson, files.safetensors);
      } catch (e) {
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
      return { id, sha256, adapter };
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
    };
  }
}
