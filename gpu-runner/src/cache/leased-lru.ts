/**
 * The runner's one cache primitive: a byte-bounded LRU whose values are leased. The adapter
 * cache (parsed adapters), the merged-session manager (ONNX sessions) and the composed-mix pool
 * are this class plus what is particular to them.
 *
 * Semantics:
 * - `acquire(key, load)` resolves to a lease on `key`'s value, running `load` on a miss.
 *   Single flight: concurrent misses for one key share one `load`. A failed load caches nothing
 *   and rejects every waiter with its error; the next acquire loads again.
 * - Leases pin: a leased entry is never evicted. The waiters of a load are pinned in the same
 *   tick the value is inserted, so no release that runs before they resume can evict it.
 *   `release()` is idempotent; it makes the entry the most recently used.
 * - Budget: unleased entries are evicted, least recently used first (or in `evictionOrder`),
 *   until the bytes of the cached entries fit `budgetBytes` — after each insert (never the
 *   entry just inserted), each release, each budget change and `makeRoom(incoming)`. While
 *   leased entries alone exceed the budget, the cache stays over it until they are released.
 * - An entry larger than the whole budget (every entry when the budget is 0) is served, not
 *   kept: concurrent leases share it, it is dropped when its last lease is released, it is not
 *   counted against the budget of the others and never pushes them out (that would not make it
 *   fit). `bytes` counts it while it lives. A budget of 0 is thus a pool of the live values.
 * - `onEvict(key, value)` runs once for every value that leaves (eviction, `evict`, `clear`,
 *   and a value whose size is not a finite number ≥ 0, which fails its load), and never while the
 *   value is leased: `clear` takes leased entries out of the cache at once but disposes each on the
 *   release of its last lease. It may be async
 *   (e.g. release an ONNX session); a throw or rejection goes to `onEvictError`, never to a
 *   caller, and the entry is gone either way. The promise a pass returns settles when the
 *   hooks of what it evicted have.
 * Cost: a hit and a release within budget O(1); an eviction pass O(entries).
 */
export interface LeasedLruOptions<V> {
  /** Bytes the cached entries may hold (≥ 0; changeable with `setBudget`). */
  budgetBytes: number;
  /** Bytes a value holds, measured once when it is inserted. */
  sizeOf(value: V): number;
  /** A value left the cache; may release resources asynchronously. */
  onEvict?(key: string, value: V): void | Promise<void>;
  /** `onEvict` threw or rejected (log it; must not throw). */
  onEvictError?(key: string, error: unknown): void;
  /**
   * The order in which unleased entries are evicted, given them least recently used first
   * (default: that order). A cost-aware cache returns its cheapest-to-lose first; entries it
   * leaves out are not evicted by this pass.
   */
  evictionOrder?(idle: readonly LeasedLruEntryInfo<V>[]): readonly LeasedLruEntryInfo<V>[];
}

export interface Lease<V> {
  readonly value: V;
  /** Idempotent: the first call unpins, later calls do nothing. */
  release(): void;
}

export interface LeasedLruEntryInfo<V> {
  key: string;
  value: V;
  bytes: number;
  /** Leases held now. */
  pins: number;
  /** Leases granted since the entry was inserted. */
  leases: number;
  insertedAt: number;
  lastUsed: number;
}

export interface LeasedLruStats {
  budgetBytes: number;
  /** Bytes of every live entry (over-budget ones included). */
  bytes: number;
  entries: number;
  /** Loads in flight. */
  loading: number;
  /** Acquires served from memory. */
  hits: number;
  /** Acquires that started or joined a load. */
  misses: number;
  loads: number;
  loadFailures: number;
  /** Entries that left by eviction (budget, `evict`, an over-budget entry released). */
  evictions: number;
}

type Entry<V> = LeasedLruEntryInfo<V>;

interface Flight<V> {
  promise: Promise<Entry<V>>;
  /** Acquires waiting on this load: the pins the entry starts with. */
  waiters: number;
}

const settled = (all: Promise<void>[]): Promise<void> => Promise.all(all).then(() => undefined);

export class LeasedLru<V> {
  /** Map order is recency: first = least recently used. */
  private readonly entries = new Map<string, Entry<V>>();
  private readonly flights = new Map<string, Flight<V>>();
  private budget: number;
  /** Σ bytes of every entry in `entries`. */
  private total = 0;
  private readonly counters = { hits: 0, misses: 0, loads: 0, loadFailures: 0, evictions: 0 };
  /** Entries `clear` took out while leased: disposed (the callback) when their last lease is released. */
  private readonly retired = new Map<Entry<V>, () => void>();

  constructor(private readonly options: LeasedLruOptions<V>) {
    this.budget = checkedBudget(options.budgetBytes);
  }

  /** A lease on `key`'s value; `load` runs only on a miss that no other caller is already loading. */
  async acquire(key: string, load: () => V | Promise<V>): Promise<Lease<V>> {
    const hit = this.tryAcquire(key);
    if (hit) return hit;
    this.counters.misses++;
    const flight = this.flights.get(key) ?? this.startLoad(key, load);
    flight.waiters++;
    return this.lease(await flight.promise);
  }

  /** A lease on `key` when it is cached, else null (never loads). */
  tryAcquire(key: string): Lease<V> | null {
    const entry = this.entries.get(key);
    if (!entry) return null;
    this.counters.hits++;
    entry.pins++;
    this.touch(entry);
    return this.lease(entry);
  }

  /**
   * Loads `key` into the cache without leasing it (joining a load in flight); resolves once it
   * is cached, rejects like `acquire`. Nobody holds it: it stays while it fits the budget.
   */
  async prefetch(key: string, load: () => V | Promise<V>): Promise<void> {
    if (this.entries.has(key)) return;
    await (this.flights.get(key) ?? this.startLoad(key, load)).promise;
  }

  private startLoad(key: string, load: () => V | Promise<V>): Flight<V> {
    const flight: Flight<V> = { promise: undefined as unknown as Promise<Entry<V>>, waiters: 0 };
    // In the map before `load` runs: a load that throws synchronously still clears it.
    this.flights.set(key, flight);
    this.counters.loads++;
    flight.promise = (async () => {
      let value: V;
      let bytes: number;
      try {
        value = await load();
        bytes = this.options.sizeOf(value);
        if (!(Number.isFinite(bytes) && bytes >= 0)) {
          await this.dispose(key, value);
          throw new Error(`cache entry ${key}: its size is ${bytes} bytes, not a finite number ≥ 0`);
        }
      } catch (e) {
        this.counters.loadFailures++;
        throw e;
      } finally {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      }
      return this.insert(key, value, bytes, flight.waiters);
    })();
    return flight;
  }

  /** Same tick as the load's end: pinned for its waiters before any of them resumes. */
  private insert(key: string, value: V, bytes: number, pins: number): Entry<V> {
    const now = Date.now();
    const entry: Entry<V> = { key, value, bytes, pins, leases: 0, insertedAt: now, lastUsed: now };
    this.entries.set(key, entry);
    this.total += bytes;
    void this.evictOverBudget(0, entry);
    return entry;
  }

  private lease(entry: Entry<V>): Lease<V> {
    entry.leases++;
    let released = false;
    return {
      value: entry.value,
      release: () => {
        if (released) return;
        released = true;
        entry.pins--;
        if (this.entries.get(entry.key) !== entry) {
          // Cleared meanwhile: its last release disposes it.
          if (entry.pins === 0) this.retired.get(entry)?.();
          return;
        }
        this.touch(entry);
        void this.evictOverBudget();
      },
    };
  }

  private touch(entry: Entry<V>): void {
    entry.lastUsed = Date.now();
    this.entries.delete(entry.key);
    this.entries.set(entry.key, entry);
  }

  private oversized(entry: Entry<V>): boolean {
    return this.budget === 0 || entry.bytes > this.budget;
  }

  /**
   * One eviction pass: drops unleased over-budget entries, then evicts unleased entries (never
   * `keep`) until the cached bytes plus `incoming` fit the budget (an `incoming` larger than the
   * budget counts as 0). Settles when the evicted entries' `onEvict` hooks have.
   */
  private evictOverBudget(incoming = 0, keep?: Entry<V>): Promise<void> {
    const room = incoming > this.budget ? 0 : incoming;
    if (this.budget > 0 && this.total + room <= this.budget) return Promise.resolve();
    const done: Promise<void>[] = [];
    let cached = 0;
    const idle: Entry<V>[] = [];
    for (const entry of [...this.entries.values()]) {
      const oversized = this.oversized(entry);
      if (!oversized) cached += entry.bytes;
      if (entry.pins > 0 || (entry === keep && !oversized)) continue;
      if (oversized) done.push(this.evictEntry(entry));
      else idle.push(entry);
    }
    const order = this.options.evictionOrder ? this.options.evictionOrder(idle.map((e) => ({ ...e }))) : idle;
    for (const { key } of order) {
      if (cached + room <= this.budget) break;
      const entry = this.entries.get(key);
      if (!entry || entry.pins > 0 || entry === keep) continue;
      cached -= entry.bytes;
      done.push(this.evictEntry(entry));
    }
    return settled(done);
  }

  /** Evicts idle entries so that `incoming` more bytes fit (e.g. before building a large value). */
  makeRoom(incoming: number): Promise<void> {
    return this.evictOverBudget(incoming);
  }

  get budgetBytes(): number {
    return this.budget;
  }

  /** A new budget, enforced at once: a shrink evicts idle entries now (leased ones when released). */
  setBudget(budgetBytes: number): Promise<void> {
    this.budget = checkedBudget(budgetBytes);
    return this.evictOverBudget();
  }

  private evictEntry(entry: Entry<V>): Promise<void> {
    this.counters.evictions++;
    return this.remove(entry);
  }

  private remove(entry: Entry<V>): Promise<void> {
    this.entries.delete(entry.key);
    this.total -= entry.bytes;
    return this.dispose(entry.key, entry.value);
  }

  private async dispose(key: string, value: V): Promise<void> {
    try {
      await this.options.onEvict?.(key, value);
    } catch (e) {
      this.options.onEvictError?.(key, e);
    }
  }

  /**
   * Evicts the unleased entries `match` selects; leased ones stay and are listed apart.
   * `disposed` settles when the evicted entries' hooks have.
   */
  evict(match: (key: string, value: V) => boolean): {
    evicted: LeasedLruEntryInfo<V>[];
    pinned: LeasedLruEntryInfo<V>[];
    disposed: Promise<void>;
  } {
    const evicted: LeasedLruEntryInfo<V>[] = [];
    const pinned: LeasedLruEntryInfo<V>[] = [];
    const done: Promise<void>[] = [];
    for (const entry of [...this.entries.values()]) {
      if (!match(entry.key, entry.value)) continue;
      if (entry.pins > 0) {
        pinned.push({ ...entry });
        continue;
      }
      evicted.push({ ...entry });
      done.push(this.evictEntry(entry));
    }
    return { evicted, pinned, disposed: settled(done) };
  }

  /**
   * Shutdown: waits for the loads in flight, then takes every entry out of the cache (a later
   * acquire loads afresh). Unleased entries are disposed now; a leased one is disposed when its last
   * lease is released (a value in use — a merged session inside a running step — is never disposed
   * under its user). Resolves when every hook has run, the deferred ones included: after the last
   * lease is released.
   */
  async clear(): Promise<void> {
    await Promise.allSettled([...this.flights.values()].map((f) => f.promise));
    const done: Promise<void>[] = [];
    for (const entry of [...this.entries.values()]) {
      if (entry.pins === 0) {
        done.push(this.remove(entry));
        continue;
      }
      this.entries.delete(entry.key);
      this.total -= entry.bytes;
      done.push(
        new Promise<void>((resolve) =>
          this.retired.set(entry, () => {
            this.retired.delete(entry);
            void this.dispose(entry.key, entry.value).then(resolve);
          }),
        ),
      );
    }
    await settled(done);
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  isLoading(key: string): boolean {
    return this.flights.has(key);
  }

  get(key: string): LeasedLruEntryInfo<V> | undefined {
    const entry = this.entries.get(key);
    return entry && { ...entry };
  }

  /** Every live entry, least recently used first. */
  list(): LeasedLruEntryInfo<V>[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  stats(): LeasedLruStats {
    return { budgetBytes: this.budget, bytes: this.total, entries: this.entries.size, loading: this.flights.size, ...this.counters };
  }
}

function checkedBudget(bytes: number): number {
  if (!(Number.isFinite(bytes) && bytes >= 0)) throw new RangeError(`cache budget must be a finite number of bytes ≥ 0, got ${bytes}`);
  return bytes;
}
