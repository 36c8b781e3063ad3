// Usage writes are retry-safe (workers/src/limits/usage-batch.ts, reservation.ts): every flush of an
// isolate's ledger is a batch with its own id, recorded in the same D1 transaction as its usage, so a
// write that failed is retried with backoff and a retry of a batch already applied changes nothing —
// billed exactly once, the reserved tokens moved or given back exactly once. And a kept lease is given
// back even when the context that kept it is too old to look again (another waiting context takes
// the due time over). D1 faults and cancelled contexts cannot be produced locally: they are simulated.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDb } from "../../workers/src/db/client.js";
import { IsolateLedger, ledgerFor, RUNNING_WORK_STALE_MS, track } from "../../workers/src/limits/isolate-ledger.js";
import { BudgetReservation, type FlushPolicy } from "../../workers/src/limits/reservation.js";
import { newUsageBatch, usageRetryDelayMs, writeUsageBatch } from "../../workers/src/limits/usage-batch.js";
import { setLogLevel } from "../../workers/src/logging/log.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";
import { minuteOf, utcDay } from "../../workers/src/util/time.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { MODEL, useFakeRunners } from "./fake-runner.js";
import { awayFromMinuteEnd, callRaw, failD1Batches, LEASED, newTenant, today, uploadAdapter } from "./helpers.js";

useFakeRunners();

/** A retry comes 1 s after a failed write, and the lease is given back 1–2 s after the last request. */
const TIMEOUT_MS = 20_000;

/** 20 bytes + BOS + 4 = 25 tokens reserved; the fake runner bills 20 + 4 = 24. */
const json = { model: MODEL, prompt: "x".repeat(20), max_tokens: 4 };

/** A completion with the leased vars, not waiting for the edge's after-response work. */
async function complete(key: string): Promise<number> {
  const res = await callRaw("/v1/completions", { key, json, vars: LEASED });
  await res.arrayBuffer();
  return res.status;
}

async function minuteCount(tenantId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count FROM rate_windows WHERE tenant_id = ? AND window_start = ?")
    .bind(tenantId, minuteOf(Date.now()))
    .first<{ count: number }>();
  return row?.count ?? 0;
}

describe("retry-safe usage writes", () => {
  it.each([
    ["a flush whose D1 write fails is retried about 1 s later and billed once; the lease is given back", "before", 1],
    // The usage write's reply lost, then its first retry's too: the retries change nothing.
    ["a flush applied in D1 whose reply was lost: its retries change nothing (billed once, tokens released once)", "after", 2],
  ] as const)("%s", async (_, when, faults) => {
    const a = await newTenant("a");
    await awayFromMinuteEnd();
    const fault = failD1Batches(/usage_batches/, when, faults);
    for (let i = 0; i < 3; i++) expect(await complete(a.key)).toBe(200);
    await afterResponseSettled(); // the failed flush, its retries, the lease given back
    vi.restoreAllMocks();
    expect(fault.injected).toBe(faults);
    expect(await today(a.id)).toEqual({ requests: 3, prompt: 60, completion: 12, reserved: 0 });
    expect(await minuteCount(a.id)).toBe(3);
  }, TIMEOUT_MS);

  it("the same batch written several times at once (a retry beside a write still under way) applies once; other batches beside it apply", async () => {
    const t = await newTenant("c");
    const x = (await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
    const day = utcDay(Date.now());
    const minute = minuteOf(Date.now());
    // Two isolates hold leases: 100 and 80 tokens reserved, 8 and 4 slots of the minute counted.
    await env.DB.prepare("INSERT INTO usage_daily (tenant_id, day, reserved_tokens) VALUES (?, ?, 180)").bind(t.id, day).run();
    await env.DB.prepare("INSERT INTO rate_windows (tenant_id, window_start, count) VALUES (?, ?, 12)").bind(t.id, minute).run();
    const flush = (requests: number, returnedTokens: number, returnedSlots: number) => ({
      usage: { requests, promptTokens: 20 * requests, completionTokens: 4 * requests, adapterUses: new Map([[x.id, requests]]) },
      returnedTokens,
      returnedSlots,
      minute,
      leaseKept: false,
    });
    const one = newUsageBatch(t.id, day, flush(2, 100 - 48, 6))!;
    const other = newUsageBatch(t.id, day, flush(1, 80 - 24, 3))!;
    expect(one.id).not.toBe(other.id);
    const db = createDb(env.DB);
    await Promise.all([writeUsageBatch(db, one), writeUsageBatch(db, one), writeUsageBatch(db, other), writeUsageBatch(db, one)]);
    await writeUsageBatch(db, other); // a retry after the fact
    expect(await today(t.id)).toEqual({ requests: 3, prompt: 60, completion: 12, reserved: 0 });
    expect(await minuteCount(t.id)).toBe(3);
    const uses = await env.DB.prepare("SELECT uses FROM adapters WHERE id = ?").bind(x.id).first<{ uses: number }>();
    expect(uses!.uses).toBe(3);
    const ids = await env.DB.prepare("SELECT id FROM usage_batches ORDER BY id").all<{ id: string }>();
    expect(ids.results.map((r) => r.id).sort()).toEqual([one.id, other.id].sort());
  });

  it("a flush left hanging by a cancelled context (its batch not written): the next flush, once the hung one is stale, writes that batch and its own", async () => {
    const a = await newTenant("d");
    await awayFromMinuteEnd();
    expect(await complete(a.key)).toBe(200);
    const ledger = ledgerFor(a.id, utcDay(Date.now()));
    // What a flush whose context was cancelled before its write reached D1 leaves: its batch taken out of the
    // ledger and unwritten, and a write that never settles (stale 300 ms from now).
    ledger.unwritten = newUsageBatch(a.id, ledger.day, ledger.takeFlush(Date.now(), LEASED_FLUSH_MS))!;
    ledger.flushing = track(new Promise(() => {}), Date.now() - RUNNING_WORK_STALE_MS + 300);
    expect(await complete(a.key)).toBe(200);
    await afterResponseSettled();
    expect(await today(a.id)).toEqual({ requests: 2, prompt: 40, completion: 8, reserved: 0 });
  }, TIMEOUT_MS);

  it("retries back off: 1 s, 2 s, 4 s, … at most 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(usageRetryDelayMs)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});

const LEASED_FLUSH_MS = Number(LEASED.USAGE_FLUSH_MS);

describe("a kept lease whose context is too old to look again", () => {
  it("is taken over by a younger context waiting for the same due time, and given back about flushMs later", async () => {
    const t = await newTenant("e");
    await awayFromMinuteEnd();
    const day = utcDay(Date.now());
    const minute = minuteOf(Date.now());
    // The isolate's lease, reserved in D1: 100 tokens and 8 slots.
    await env.DB.prepare("INSERT INTO usage_daily (tenant_id, day, reserved_tokens) VALUES (?, ?, 100)").bind(t.id, day).run();
    await env.DB.prepare("INSERT INTO rate_windows (tenant_id, window_start, count) VALUES (?, ?, 8)").bind(t.id, minute).run();
    const ledger = new IsolateLedger(t.id, day);
    ledger.addTokens(100);
    ledger.addSlots(8, minute);
    const work: Promise<unknown>[] = [];
    const schedule = (p: Promise<unknown>) => void work.push(p);
    // Contexts past FLUSH_CHAIN_MS (chainMs 0: old at once) and a young one; flushes 200 ms apart.
    const old: FlushPolicy = { flushMs: 200, schedule, chainMs: 0 };
    const young: FlushPolicy = { flushMs: 200, schedule };
    const db = createDb(env.DB);
    const served = (policy: FlushPolicy) => {
      expect(ledger.tryTake(25, minuteOf(Date.now()), Date.now())).toBe(true);
      return new BudgetReservation(db, ledger, 25, policy).settle({ promptTokens: 20, completionTokens: 4 }, []);
    };
    await served(old); // its timer is set first: it writes the flush due 200 ms from now
    await served(young); // waits for the same due time
    await new Promise((r) => setTimeout(r, 100));
    await served(old); // taken 100 ms before the flush: the lease is kept then, and its follow-up left to a younger context
    while (work.length > 0) await work.shift();
    expect(await today(t.id)).toEqual({ requests: 3, prompt: 60, completion: 12, reserved: 0 });
    expect(await minuteCount(t.id)).toBe(3);
    expect(ledger.empty).toBe(true);
  }, TIMEOUT_MS);
});

/** A ledger holding a lease reserved in D1 (100 tokens, 8 slots of this minute), as a refill leaves it. */
async function leasedLedger(tenantId: string): Promise<IsolateLedger> {
  const day = utcDay(Date.now());
  const minute = minuteOf(Date.now());
  await env.DB.prepare("INSERT INTO usage_daily (tenant_id, day, reserved_tokens) VALUES (?, ?, 100)").bind(tenantId, day).run();
  await env.DB.prepare("INSERT INTO rate_windows (tenant_id, window_start, count) VALUES (?, ?, 8)").bind(tenantId, minute).run();
  const ledger = new IsolateLedger(tenantId, day);
  ledger.addTokens(100);
  ledger.addSlots(8, minute);
  return ledger;
}

/** A request's hold taken from the ledger (25 tokens, a slot); settling it bills 20 + 4. */
function take(ledger: IsolateLedger, policy: FlushPolicy): { settle: () => Promise<void> } {
  expect(ledger.tryTake(25, minuteOf(Date.now()), Date.now())).toBe(true);
  const hold = new BudgetReservation(createDb(env.DB), ledger, 25, policy);
  return { settle: () => hold.settle({ promptTokens: 20, completionTokens: 4 }, []) };
}

describe("the one unwritten batch of a ledger", () => {
  afterEach(() => setLogLevel(env.LOG_LEVEL));

  it("is not replaced by a context whose stale write of the batch before it succeeds late: it is retried, billed once", async () => {
    const t = await newTenant("g");
    await awayFromMinuteEnd();
    const ledger = await leasedLedger(t.id);
    const work: Promise<unknown>[] = [];
    const policy: FlushPolicy = { flushMs: 0, schedule: (p) => void work.push(p) };
    // D1: context X's write of B0 (the first batch) fails, its retry hangs until released; B1 (the fourth sent) fails once.
    let releaseX!: () => void;
    const xHeld = new Promise<void>((resolve) => (releaseX = resolve));
    const realBatch = env.DB.batch.bind(env.DB);
    let sent = 0;
    vi.spyOn(env.DB, "batch").mockImplementation(async (statements) => {
      const n = ++sent;
      if (n === 1) throw new Error("D1_ERROR: injected failure");
      if (n === 2) await xHeld;
      if (n === 4) throw new Error("D1_ERROR: injected failure");
      return realBatch(statements);
    });
    const [x, y, z] = [take(ledger, policy), take(ledger, policy), take(ledger, policy)];
    await x.settle(); // X's flush: B0 (X's usage), its write failed
    while (sent < 2) await new Promise((r) => setTimeout(r, 5)); // X retries B0 1 s later: that write hangs
    const xRetry = work.shift()!;
    ledger.flushing!.since -= RUNNING_WORK_STALE_MS; // X's write turns stale (as when it takes > 10 s)
    await y.settle(); // Y sends B0 again (applied), then B1 (Y's usage), which fails: retried 1 s later
    const b1 = ledger.unwritten;
    expect(b1?.flush.usage.requests).toBe(1);
    await z.settle(); // Z's usage stays pending behind B1
    releaseX();
    await xRetry; // X's retry of B0 succeeds late: B1 stays the ledger's unwritten batch, Z's usage pending
    expect(ledger.unwritten).toBe(b1);
    expect(ledger.pending.requests).toBe(1);
    while (work.length > 0) await work.shift();
    vi.restoreAllMocks();
    expect(sent).toBeGreaterThanOrEqual(6); // B0 three times, B1 failed then retried, Z's batch
    expect(await today(t.id)).toEqual({ requests: 3, prompt: 60, completion: 12, reserved: 0 });
    expect(await minuteCount(t.id)).toBe(3);
    expect(ledger.empty).toBe(true);
  }, TIMEOUT_MS);

  it("whose retry falls past its context's chain is not waited for there: logged as an error with its figures, then written by the tenant's next settlement", async () => {
    const t = await newTenant("h");
    await awayFromMinuteEnd();
    const ledger = await leasedLedger(t.id);
    const work: Promise<unknown>[] = [];
    const drain = async () => {
      while (work.length > 0) await work.shift();
    };
    const schedule = (p: Promise<unknown>) => void work.push(p);
    // A chain of 1.5 s: the retry 1 s after the first failure is within it; the one 2 s after the second is not.
    const short: FlushPolicy = { flushMs: 0, schedule, chainMs: 1_500 };
    const fault = failD1Batches(/usage_batches/, "before", 2);
    const errors: string[] = [];
    vi.spyOn(console, "error").mockImplementation((line: string) => void errors.push(line));
    vi.spyOn(console, "warn").mockImplementation(() => {});
    setLogLevel("error"); // the tests' LOG_LEVEL is "silent" (restored after each test)
    const first = take(ledger, short);
    const later = take(ledger, { flushMs: 0, schedule });
    await first.settle(); // fails; retried 1 s later from this context, fails again
    await drain();
    expect(fault.injected).toBe(2);
    const uncarried = errors.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => e.msg === "usage batch unwritten, no request left to retry it");
    expect(uncarried).toHaveLength(1);
    expect(uncarried[0]).toMatchObject({ level: "error", tenant: t.id, day: ledger.day, batch: ledger.unwritten!.id, attempts: 2, requests: 1, billed: { promptTokens: 20, completionTokens: 4 } });
    expect(ledger.flushCarried).toBe(false);
    expect(await today(t.id)).toMatchObject({ requests: 0 });
    await new Promise((r) => setTimeout(r, Math.max(0, ledger.flushDue! - Date.now())));
    await later.settle(); // the tenant's next settlement writes the batch, then its own usage and the lease
    await drain();
    vi.restoreAllMocks();
    expect(await today(t.id)).toEqual({ requests: 2, prompt: 40, completion: 8, reserved: 0 });
    expect(await minuteCount(t.id)).toBe(2);
    expect(ledger.empty).toBe(true);
  }, TIMEOUT_MS);
});
