/**
 * Parsed adapters in memory: fetched from an AdapterSource by id, verified against the
 * sha256 the edge sent with the request, parsed with core, kept in an LRU bounded by the
 * bytes of their Float32 A/B tensors.
 *
 * - Keyed by (id, sha256): the parsed adapter depends on adapter_config.json (alpha,
 *   rank_pattern, use_rslora, …), which the blob's sha256 does not cover, so the same bytes
 *   under two ids (possibly with different configs) are two entries.
 * - Concurrent misses for one (id, sha256) share one fetch (single flight).
 * - A corrupt or mismatching blob fails every request waiting on it and is never cached.
 * - An adapter is pinned while a request uses it (acquire → release) and never evicted while
 *   pinned; an adapter larger than the whole budget is served and dropped when released.
 */
import { createHash } from "node:crypto";
import type { LoraAdapter } from "#core/lora/types";
import { EngineError } from "../engine/errors.js";
import type { Logger } from "../engine/logger.js";
import { silentLogger } from "../engine/logger.js";
import type { AdapterSource } from "./edge-source.js";

/** Turns the two PEFT files into an adapter; throws on malformed or unsupported files. */
export type AdapterParser = (configJson: string, safetensors: Uint8Array) => LoraAdapter;

export interface AdapterCacheOptions {
  budgetBytes: number;
  parse: AdapterParser;
  log?: Logger;
}

export interface AdapterLease {
  adapter: LoraAdapter;
  /** Call once when the request no longer needs the adapter. */
  release(): void;
}

interface Entry {
  /** Map key: see cacheKey. */
  key: string;
  sha256: string;
  ids: Set<string>;
  adapter: LoraAdapter;
  bytes: number;
  pins: number;
  hits: number;
  fetchedAt: number;
  lastUsed: number;
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
  /** Map order is LRU order: first = least recently used. */
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Entry>>();
  private readonly counters = { hitsTotal: 0, missesTotal: 0, fetchesTotal: 0, fetchFailuresTotal: 0, evictionsTotal: 0 };
  private readonly log: Logger;

  constructor(
    private readonly source: AdapterSource | null,
    private readonly options: AdapterCacheOptions,
  ) {
    this.log = options.log ?? silentLogger;
  }

  /** The adapter `id` whose blob must hash to `sha256`, pinned until `release()`. */
  async acquire(id: string, sha256: string): Promise<AdapterLease> {
    const key = cacheKey(id, sha256);
    let entry = this.entries.get(key);
    if (entry) {
      this.counters.hitsTotal++;
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      this.counters.missesTotal++;
      let pending = this.inFlight.get(key);
      if (!pending) {
        pending = this.load(id, sha256);
        this.inFlight.set(key, pending);
        const clear = () => this.inFlight.delete(key);
        pending.then(clear, clear);
      }
      entry = await pending;
    }
    entry.ids.add(id);
    entry.pins++;
    entry.hits++;
    entry.lastUsed = Date.now();
    const pinned = entry;
    let released = false;
    return {
      adapter: entry.adapter,
      release: () => {
        if (released) return;
        released = true;
        pinned.pins--;
        pinned.lastUsed = Date.now();
        this.evictOverBudget();
      },
    };
  }

  private async load(id: string, sha256: string): Promise<Entry> {
    if (!this.source) {
      throw new EngineError("service_unavailable_error", `adapter ${id} is not cached and no edge URL is configured (RUNNER_EDGE_URL)`);
    }
    this.counters.fetchesTotal++;
    const started = performance.now();
    try {
      const files = await this.source.fetchAdapter(id);
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
      try {
        adapter = this.options.parse(files.configJson, files.safetensors);
      } catch (e) {
        throw new EngineError(
          "invalid_adapter",
          `adapter ${id} cannot be loaded: ${(e as Error).message}`,
        );
      }
      const entry: Entry = {
        key: cacheKey(id, sha256),
        sha256,
        ids: new Set([id]),
        adapter,
        bytes: adapterBytes(adapter),
        pins: 0,
        hits: 0,
        fetchedAt: Date.now(),
        lastUsed: Date.now(),
      };
      this.entries.set(entry.key, entry);
      this.log("info", "adapter cached", {
        adapter: id,
        sha256,
        bytes: entry.bytes,
        fetchMs: Math.round(performance.now() - started),
      });
      // Evict others now; this one is about to be pinned by its waiters.
      this.evictOverBudget(entry);
      return entry;
    } catch (e) {
      this.counters.fetchFailuresTotal++;
      this.log("warn", "adapter fetch failed", { adapter: id, sha256, error: (e as Error).message });
      throw e;
    }
  }

  /** Drops least-recently-used unpinned entries while over budget (never `keep`). */
  private evictOverBudget(keep?: Entry): void {
    let bytes = this.bytes();
    for (const entry of [...this.entries.values()]) {
      if (bytes <= this.options.budgetBytes) break;
      if (entry.pins > 0 || entry === keep) continue;
      this.entries.delete(entry.key);
      bytes -= entry.bytes;
      this.counters.evictionsTotal++;
      this.log("debug", "adapter evicted", { sha256: entry.sha256, ids: [...entry.ids], bytes: entry.bytes });
    }
  }

  bytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  /** Whether some adapter with this blob is cached. */
  has(sha256: string): boolean {
    for (const e of this.entries.values()) if (e.sha256 === sha256) return true;
    return false;
  }

  list(): AdapterCacheEntryInfo[] {
    return [...this.entries.values()].reverse().map((e) => ({
      sha256: e.sha256,
      ids: [...e.ids],
      bytes: e.bytes,
      pinned: e.pins,
      hits: e.hits,
      modules: e.adapter.modules.size,
      maxRank: Math.max(0, ...[...e.adapter.modules.values()].map((m) => m.rank)),
      fetched_at: new Date(e.fetchedAt).toISOString(),
      last_used: new Date(e.lastUsed).toISOString(),
    }));
  }

  /**
   * Evicts the entries matching an id or a sha256. Pinned entries stay (reported in `pinned`).
   */
  evict(idOrSha: string): { evicted: string[]; pinned: string[] } {
    const evicted: string[] = [];
    const pinned: string[] = [];
    for (const entry of [...this.entries.values()]) {
      if (entry.sha256 !== idOrSha && !entry.ids.has(idOrSha)) continue;
      if (entry.pins > 0) {
        pinned.push(entry.sha256);
        continue;
      }
      this.entries.delete(entry.key);
      this.counters.evictionsTotal++;
      evicted.push(entry.sha256);
    }
    return { evicted, pinned };
  }

  stats(): AdapterCacheStats {
    return { budgetBytes: this.options.budgetBytes, bytes: this.bytes(), entries: this.entries.size, ...this.counters };
  }
}
