// The runner's one cache primitive, tested once: budget, single flight, leases, eviction hook,
// over-budget entries, and the races its three users depend on.
import { describe, expect, it } from "vitest";
import { LeasedLru, type LeasedLruOptions } from "./leased-lru.js";

interface Value {
  name: string;
  bytes: number;
}

/** A load that settles when told to. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const value = (name: string, bytes: number): Value => ({ name, bytes });

/** A cache of `Value`s whose evictions are recorded in order. */
function cache(budgetBytes: number, extra: Partial<LeasedLruOptions<Value>> = {}) {
  const evicted: string[] = [];
  const lru = new LeasedLru<Value>({ budgetBytes, sizeOf: (v) => v.bytes, onEvict: (key) => void evicted.push(key), ...extra });
  const keys = () => lru.list().map((e) => e.key);
  /** Acquires and releases at once: the key is cached, unleased, most recently used. */
  const touch = async (name: string, bytes: number) => (await lru.acquire(name, () => value(name, bytes))).release();
  return { lru, evicted, keys, touch };
}

describe("LeasedLru", () => {
  it("loads on a miss, hits afterwards, evicts the least recently used unleased entries over budget", async () => {
    const { lru, evicted, keys, touch } = cache(100);
    await touch("a", 40);
    await touch("b", 40);
    const hit = await lru.acquire("a", () => value("never", 999));
    expect(hit.value.name).toBe("a");
    hit.release(); // a is now the most recently used
    expect(lru.stats()).toMatchObject({ hits: 1, misses: 2, loads: 2, evictions: 0 });
    await touch("c", 40);
    expect(evicted).toEqual(["b"]);
    expect(keys()).toEqual(["a", "c"]);
    expect(lru.bytes).toBe(80);
    expect(lru.get("a")).toMatchObject({ leases: 2, pins: 0 });
  });

  it("recency counts from the release: an entry leased long ago but released last is kept", async () => {
    const { lru, evicted, touch } = cache(100);
    const a = await lru.acquire("a", () => value("a", 40));
    await touch("b", 40);
    a.release();
    await touch("c", 40);
    expect(evicted).toEqual(["b"]);
    expect(lru.has("a")).toBe(true);
  });

  it("never evicts a leased entry; over budget while leased, back within it on release; release is idempotent", async () => {
    const { lru, evicted, keys } = cache(100);
    const a = await lru.acquire("a", () => value("a", 60));
    const b = await lru.acquire("b", () => value("b", 60));
    expect(lru.bytes).toBe(120);
    expect(evicted).toEqual([]);
    a.release();
    expect(evicted).toEqual(["a"]);
    b.release();
    b.release();
    a.release();
    expect(lru.get("b")!.pins).toBe(0);
    expect(keys()).toEqual(["b"]);
    expect(evicted).toEqual(["a"]);
  });

  it("an entry larger than the budget is served and shared while leased, pushes nothing out, and is dropped on its last release", async () => {
    const { lru, evicted, keys, touch } = cache(100);
    await touch("a", 40);
    await touch("b", 40);
    const [big1, big2] = await Promise.all([lru.acquire("big", () => value("big", 500)), lru.acquire("big", () => value("other", 500))]);
    expect(big1.value).toBe(big2.value);
    expect(lru.bytes).toBe(580); // counted while it lives
    expect(keys()).toEqual(["a", "b", "big"]); // a and b stay: evicting them would not make it fit
    await touch("c", 20); // the others' budget ignores the big one: 100 ≤ 100
    expect(evicted).toEqual([]);
    big1.release();
    expect(lru.has("big")).toBe(true);
    big2.release();
    expect(evicted).toEqual(["big"]);
    expect(keys()).toEqual(["a", "b", "c"]);
    expect(lru.stats().evictions).toBe(1);
  });

  it("budget 0 is a pool of the live values: shared while leased, dropped with the last lease", async () => {
    const { lru, evicted } = cache(0);
    let loads = 0;
    const load = () => (loads++, value("x", 0));
    const x1 = await lru.acquire("x", load);
    const x2 = await lru.acquire("x", load);
    expect(x1.value).toBe(x2.value);
    expect(loads).toBe(1);
    x1.release();
    expect(lru.size).toBe(1);
    x2.release();
    expect(lru.size).toBe(0);
    expect(evicted).toEqual(["x"]);
    await lru.acquire("x", load);
    expect(loads).toBe(2);
  });

  it("single flight: concurrent misses share one load; a failed load rejects every waiter and caches nothing", async () => {
    const { lru } = cache(100);
    const d = deferred<Value>();
    let loads = 0;
    const load = () => (loads++, d.promise);
    const waiting = [lru.acquire("a", load), lru.acquire("a", load), lru.acquire("a", load)];
    expect(lru.isLoading("a")).toBe(true);
    expect(lru.stats()).toMatchObject({ loading: 1, misses: 3, loads: 1 });
    const failure = new Error("boom");
    d.reject(failure);
    for (const w of waiting) await expect(w).rejects.toBe(failure);
    expect(loads).toBe(1);
    expect(lru.stats()).toMatchObject({ entries: 0, loading: 0, loadFailures: 1, bytes: 0 });
    const again = await lru.acquire("a", () => value("a", 1));
    expect(again.value.name).toBe("a");
    expect(lru.stats().loads).toBe(2);
  });

  it("a load that throws synchronously fails its caller and leaves the key loadable", async () => {
    const { lru } = cache(100);
    await expect(
      lru.acquire("a", () => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(lru.isLoading("a")).toBe(false);
    expect((await lru.acquire("a", () => value("a", 1))).value.name).toBe("a");
  });

  it("a value whose size is not a finite number ≥ 0 fails its load and is handed to onEvict", async () => {
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      const { lru, evicted } = cache(100);
      await expect(lru.acquire("a", () => value("a", bad))).rejects.toThrow(/not a finite number/);
      expect(evicted).toEqual(["a"]);
      expect(lru.stats()).toMatchObject({ entries: 0, bytes: 0, loadFailures: 1 });
    }
    expect(() => new LeasedLru<Value>({ budgetBytes: Number.NaN, sizeOf: (v) => v.bytes })).toThrow(RangeError);
  });

  it("race: a release between a load's end and its waiters resuming cannot evict what they are about to use", async () => {
    const { lru, evicted } = cache(50);
    const other = await lru.acquire("other", () => value("other", 40));
    const d = deferred<Value>();
    const w1 = lru.acquire("a", () => d.promise);
    const w2 = lru.acquire("a", () => d.promise);
    let resumed = false;
    void w1.then(() => (resumed = true));
    d.resolve(value("a", 40));
    // Runs after the load's continuation (value inserted) and before the waiters' continuations.
    await d.promise;
    expect(resumed).toBe(false);
    expect(lru.get("a")?.pins).toBe(2); // pinned for both waiters at insert
    other.release(); // over budget: must evict other, not a
    const [l1, l2] = await Promise.all([w1, w2]);
    expect(evicted).toEqual(["other"]);
    expect(l1.value).toBe(l2.value);
    l1.release();
    expect(lru.has("a")).toBe(true);
    l2.release();
    expect(lru.get("a")).toMatchObject({ pins: 0, leases: 2 });
  });

  it("the entry a load inserts is not evicted by its own insert, even unleased (prefetch)", async () => {
    const { lru, evicted, keys } = cache(100);
    const a = await lru.acquire("a", () => value("a", 60));
    await lru.prefetch("b", () => value("b", 60));
    expect(keys()).toEqual(["a", "b"]); // over budget: a is leased, b was just inserted
    expect(lru.get("b")).toMatchObject({ pins: 0, leases: 0 });
    expect(lru.stats()).toMatchObject({ misses: 1, loads: 2 });
    a.release(); // a is now the most recently used: the pass evicts b
    expect(evicted).toEqual(["b"]);
    await lru.prefetch("a", () => value("never", 1)); // cached: nothing to do
    expect(lru.get("a")!.value.name).toBe("a");
    const d = deferred<Value>();
    const leased = lru.acquire("c", () => d.promise);
    const warmed = lru.prefetch("c", () => value("never", 1));
    d.resolve(value("c", 10));
    await warmed;
    expect((await leased).value.name).toBe("c");
    expect(lru.stats().loads).toBe(3);
  });

  it("a budget shrink evicts idle entries at once and leased ones on release; makeRoom frees room ahead of a load", async () => {
    const { lru, evicted, keys, touch } = cache(100);
    await touch("a", 30);
    const b = await lru.acquire("b", () => value("b", 30));
    await touch("c", 30);
    await lru.setBudget(60);
    expect(evicted).toEqual(["a"]); // b is leased; b + c fit
    expect(keys()).toEqual(["b", "c"]);
    await lru.setBudget(20); // b and c (30 bytes each) are now larger than the budget: c, unleased, goes now
    expect(evicted).toEqual(["a", "c"]);
    b.release();
    expect(evicted).toEqual(["a", "c", "b"]);
    await lru.setBudget(100);
    await touch("d", 50);
    await touch("e", 40);
    await lru.makeRoom(20);
    expect(keys()).toEqual(["e"]); // 40 + 20 ≤ 100 after evicting d
    await lru.makeRoom(500); // larger than the budget: makes no room (it could not fit)
    expect(keys()).toEqual(["e"]);
    expect(() => lru.setBudget(-1)).toThrow(RangeError);
  });

  it("eviction hook: async disposals are awaited by the pass that evicted; a throwing or rejecting hook reaches onEvictError only", async () => {
    const errors: string[] = [];
    const slow = deferred<void>();
    const lru = new LeasedLru<Value>({
      budgetBytes: 1000,
      sizeOf: (v) => v.bytes,
      onEvict: (key) => {
        if (key === "sync-bad") throw new Error("sync dispose failed");
        if (key === "async-bad") return Promise.reject(new Error("async dispose failed"));
        if (key === "slow") return slow.promise;
      },
      onEvictError: (key, e) => void errors.push(`${key}: ${(e as Error).message}`),
    });
    for (const name of ["sync-bad", "async-bad", "slow", "held"]) (await lru.acquire(name, () => value(name, 1))).release();
    const held = await lru.acquire("held", () => value("never", 1));
    const out = lru.evict((key) => key !== "slow");
    expect(out.evicted.map((e) => e.key)).toEqual(["sync-bad", "async-bad"]);
    expect(out.pinned.map((e) => e.key)).toEqual(["held"]);
    await out.disposed;
    expect(errors).toEqual(["sync-bad: sync dispose failed", "async-bad: async dispose failed"]);
    // A pass waits for a slow dispose; the entry is gone from the cache already.
    let freed = false;
    const room = lru.makeRoom(1000).then(() => (freed = true));
    expect(lru.has("slow")).toBe(false);
    await tick();
    expect(freed).toBe(false);
    slow.resolve();
    await room;
    expect(freed).toBe(true);
    expect(lru.stats()).toMatchObject({ entries: 1, evictions: 3 });
    held.release();
  });

  it("race: an entry leased while another's slow dispose is pending is not evicted; it goes on its release", async () => {
    const slow = deferred<void>();
    const { lru, evicted, keys, touch } = cache(100, {
      onEvict: (key) => {
        evicted.push(key);
        if (key === "a") return slow.promise;
      },
    });
    await touch("a", 40);
    await touch("b", 40);
    const pass = lru.setBudget(40); // evicts a, then waits on its dispose
    expect(keys()).toEqual(["b"]);
    const b = await lru.acquire("b", () => value("never", 1)); // taken while the pass waits
    void lru.setBudget(1); // b is leased: stays
    slow.resolve();
    await pass;
    expect(keys()).toEqual(["b"]);
    expect(b.value.name).toBe("b");
    b.release(); // idle and over budget: evicted
    expect(keys()).toEqual([]);
    expect(evicted).toEqual(["a", "b"]);
  });

  it("evictionOrder chooses which idle entries go first; entries it leaves out stay", async () => {
    const { lru, evicted, keys, touch } = cache(100, {
      evictionOrder: (idle) => [...idle].filter((e) => e.key !== "keep").sort((x, y) => y.bytes - x.bytes),
    });
    await touch("keep", 10);
    await touch("small", 20);
    await touch("large", 50);
    await touch("new", 30); // 110 > 100: the order says largest first, not least recently used
    expect(evicted).toEqual(["large"]);
    await lru.setBudget(35);
    expect(evicted).toEqual(["large", "new"]);
    const small = await lru.acquire("small", () => value("never", 1));
    await lru.setBudget(25); // 30 > 25, but the only idle entry is one the order never offers
    expect(keys()).toEqual(["keep", "small"]);
    small.release();
    expect(evicted).toEqual(["large", "new", "small"]);
    expect(keys()).toEqual(["keep"]);
  });

  it("clear waits for loads in flight, empties the cache at once, disposes idle entries now and leased ones on their last release", async () => {
    const { lru, evicted, touch } = cache(100);
    await touch("a", 10);
    const b = await lru.acquire("b", () => value("b", 10));
    const b2 = await lru.acquire("b", () => value("never", 1));
    const d = deferred<Value>();
    const c = lru.acquire("c", () => d.promise);
    let cleared = false;
    const clearing = lru.clear().then(() => (cleared = true));
    d.resolve(value("c", 10));
    const cLease = await c;
    expect(cLease.value.name).toBe("c");
    await tick();
    // Out of the cache at once (a new acquire loads afresh); only the idle entry is disposed yet.
    expect(lru.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(evicted).toEqual(["a"]);
    const fresh = await lru.acquire("b", () => value("b-again", 10));
    expect(fresh.value.name).toBe("b-again");
    fresh.release();
    // b is disposed on its last lease's release (not the first), c on its own; clear resolves after both.
    b.release();
    b.release(); // idempotent: does not count as the second lease
    await tick();
    expect(evicted).toEqual(["a"]);
    b2.release();
    await tick();
    expect(evicted).toEqual(["a", "b"]);
    expect(cleared).toBe(false);
    cLease.release();
    await clearing;
    expect(evicted).toEqual(["a", "b", "c"]);
    expect(lru.stats()).toMatchObject({ entries: 1, evictions: 0 }); // the fresh b, cached after the clear
    b2.release();
    await tick();
    expect(evicted).toEqual(["a", "b", "c"]); // a repeated release disposes nothing twice
  });

  it("clear never disposes a value while a lease holds it (its hook sees no user)", async () => {
    const inUse = new Set<string>();
    const disposedInUse: string[] = [];
    const lru = new LeasedLru<Value>({ budgetBytes: 0, sizeOf: (v) => v.bytes, onEvict: (key) => void (inUse.has(key) && disposedInUse.push(key)) });
    const leases = await Promise.all(["x", "y"].map(async (k) => {
      const lease = await lru.acquire(k, () => value(k, 5));
      inUse.add(k);
      return { k, lease };
    }));
    const clearing = lru.clear();
    for (const { k, lease } of leases) {
      await tick();
      inUse.delete(k);
      lease.release();
    }
    await clearing;
    expect(disposedInUse).toEqual([]);
  });

  it("race: many concurrent acquires and releases of a few keys keep pins, bytes and counters consistent", async () => {
    const { lru, evicted } = cache(60);
    const loads = new Map<string, number>();
    const work = Array.from({ length: 200 }, async (_, i) => {
      const key = `k${i % 5}`;
      const lease = await lru.acquire(key, async () => {
        loads.set(key, (loads.get(key) ?? 0) + 1);
        await tick();
        if (i % 7 === 3) throw new Error(`load ${i} failed`);
        return value(key, 20);
      }).catch(() => null);
      if (!lease) return;
      expect(lease.value.name).toBe(key);
      expect(lru.get(key)!.pins).toBeGreaterThan(0); // leased ⇒ present
      await tick();
      lease.release();
    });
    await Promise.all(work);
    const stats = lru.stats();
    expect(lru.list().every((e) => e.pins === 0)).toBe(true);
    expect(stats.bytes).toBe(lru.list().reduce((s, e) => s + e.bytes, 0));
    expect(stats.bytes).toBeLessThanOrEqual(60);
    expect(stats.hits + stats.misses).toBe(200);
    expect([...loads.values()].reduce((s, n) => s + n, 0)).toBe(stats.loads);
    expect(evicted.length).toBe(stats.loads - stats.loadFailures - stats.entries);
    expect(stats.loading).toBe(0);
  });
});
