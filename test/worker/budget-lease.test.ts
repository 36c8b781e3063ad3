// The tenants' limits leased per isolate, as deployed (workers/src/limits/enforce.ts,
// isolate-ledger.ts, reservation.ts): a warm request passes the gate without D1, the usage of
// many requests is one write, what an isolate holds is counted in D1 against the limits (so
// reservations made elsewhere can never make a tenant overshoot), and an idle isolate gives its
// lease back. The test pool reserves per request (vitest.config.ts); these tests pass the
// deployed kind of vars with each call. Concurrency: billing.test.ts.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { utcDay } from "../../workers/src/util/time.js";
import { afterResponseSettled } from "../../workers/src/util/after-response.js";
import { ledgerFor, RUNNING_WORK_STALE_MS, track } from "../../workers/src/limits/isolate-ledger.js";
import { MODEL, useFakeRunners } from "./fake-runner.js";
import { awayFromMinuteEnd, callJson, callRaw, countD1Trips, expectError, LEASED, newTenant, today } from "./helpers.js";

useFakeRunners();

/** Each test may wait up to 5 s for a new minute and 2 s for the flushes it checks. */
const TIMEOUT_MS = 20_000;


/** 20 bytes + BOS + 4 = 25 tokens reserved; the fake runner bills 20 + 4 = 24. */
const json = { model: MODEL, prompt: "x".repeat(20), max_tokens: 4 };

/** A completion with the leased vars; returns without waiting for the edge's after-response work (a flush is 1 s away). */
async function complete(key: string): Promise<{ status: number; body: any }> {
  const res = await callRaw("/v1/completions", { key, json, vars: LEASED });
  return { status: res.status, body: await res.json() };
}

async function minuteCount(tenantId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT count FROM rate_windows WHERE tenant_id = ? AND window_start = ?")
    .bind(tenantId, Math.floor(Date.now() / 60_000))
    .first<{ count: number }>();
  return row?.count ?? 0;
}

/** Reservations another isolate makes (or gives back) on the tenant's row of today. */
async function reservedElsewhere(tenantId: string, tokens: number): Promise<void> {
  await env.DB.prepare("UPDATE usage_daily SET reserved_tokens = reserved_tokens + ? WHERE tenant_id = ? AND day = ?")
    .bind(tokens, tenantId, utcDay(Date.now()))
    .run();
}

describe("leased limits", () => {
  it("a warm request passes the gate without D1; the usage of four requests is one write; the idle isolate gives its lease back", async () => {
    const a = await newTenant("a"); // 1,000,000 tokens a day, 600 a minute: blocks of 100 tokens, 8 slots
    await awayFromMinuteEnd();
    expect((await callJson("/v1/completions", { key: a.key, json })).status).toBe(200); // warms the caches (reserved per request)
    const trips = countD1Trips();
    for (let i = 0; i < 4; i++) expect((await complete(a.key)).status).toBe(200);
    // The first takes a lease in one round trip (slots, pruning, the day's row, tokens); the next three need no D1, nor is usage written yet.
    expect(trips).toEqual(["batch of 4"]);
    // What the isolate holds is reserved in D1 (counted against the limit on every isolate).
    expect(await today(a.id)).toEqual({ requests: 1, prompt: 20, completion: 4, reserved: 100 });
    trips.length = 0;
    await afterResponseSettled(); // the flush 1 s after the first request, and the lease given back once idle
    // The four requests' usage in one write, the lease (free tokens, unused slots) given back in it or
    // in one more: the flush 1 s after the first request writes both when the isolate has been idle
    // for 1 s by then (a late timer on a loaded machine), else the usage, and the lease 1 s later.
    expect(trips.length).toBeGreaterThanOrEqual(1);
    expect(trips.length).toBeLessThanOrEqual(2);
    expect(await today(a.id)).toEqual({ requests: 5, prompt: 100, completion: 20, reserved: 0 });
    expect(await minuteCount(a.id)).toBe(5);
  }, TIMEOUT_MS);

  it("reservations made elsewhere are respected: the lease is spent, a block that no longer fits shrinks to what the request lacks, then 429; given back elsewhere, requests run again", async () => {
    const b = await newTenant("b", { tokens_per_day: 1600 }); // blocks of 100 tokens (1/16)
    await awayFromMinuteEnd();
    expect((await complete(b.key)).status).toBe(200);
    expect((await today(b.id)).reserved).toBe(100);
    await reservedElsewhere(b.id, 1450); // another isolate: 150 tokens left for this one beyond its lease
    const served: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await complete(b.key);
      served.push(r.status);
      const day = await today(b.id);
      expect(day.prompt + day.completion + day.reserved).toBeLessThanOrEqual(1600);
      if (r.status !== 200) {
        expectError(r, 429, "rate_limit_error");
        expect(r.body.error.message).toMatch(/\d+ of 1600 tokens used today \(UTC\), \d+ reserved/);
      }
    }
    // 1 + 3 from the first lease, 2 from exact reservations (a block of 100 no longer fits): 6 × 25 = the 150 left.
    expect(served).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    await reservedElsewhere(b.id, -1450);
    expect((await complete(b.key)).status).toBe(200);
    await afterResponseSettled();
    expect(await today(b.id)).toEqual({ requests: 7, prompt: 140, completion: 28, reserved: 0 });
  }, TIMEOUT_MS);

  it("the per-minute limit: slots are leased in blocks (≤ 1/16 of the limit), never beyond it; requests counted elsewhere are respected", async () => {
    const c = await newTenant("c", { rpm_limit: 32 }); // blocks of 2 slots
    await awayFromMinuteEnd();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await complete(c.key)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(await minuteCount(c.id)).toBe(30); // 15 blocks of 2, all used
    // Another isolate counts one request: one slot is left for this one.
    await env.DB.prepare("UPDATE rate_windows SET count = count + 1 WHERE tenant_id = ? AND window_start = ?")
      .bind(c.id, Math.floor(Date.now() / 60_000))
      .run();
    expect((await complete(c.key)).status).toBe(200);
    const refused = await complete(c.key);
    expectError(refused, 429, "rate_limit_error");
    expect(refused.body.error.message).toContain("per minute");
    await afterResponseSettled();
    expect((await today(c.id)).requests).toBe(31);
  }, TIMEOUT_MS);

  it("a refill or flush left hanging by a cancelled request holds the tenant's later requests up for at most RUNNING_WORK_STALE_MS", async () => {
    // On Cloudflare a request's pending I/O is cancelled when its client leaves (and waitUntil work 30 s after
    // its response): a D1 promise it started may then never settle. Simulated (it cannot be produced locally:
    // workerd runs such work to its end) by refills and flushes that never settle.
    const a = await newTenant("h");
    await awayFromMinuteEnd();
    const ledger = ledgerFor(a.id, utcDay(Date.now()));
    ledger.refill = track(new Promise(() => {}), Date.now() - RUNNING_WORK_STALE_MS); // stale already
    expect((await complete(a.key)).status).toBe(200);
    const hanging = track(new Promise(() => {}), Date.now() - RUNNING_WORK_STALE_MS + 300); // stale 300 ms from now
    ledger.flushing = hanging;
    // 85 tokens: more than the lease holds (76 free), so its refill first waits for the flush being written.
    const t0 = Date.now();
    const big = await callRaw("/v1/completions", { key: a.key, json: { ...json, prompt: "x".repeat(80) }, vars: LEASED });
    expect(big.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await afterResponseSettled();
    expect(await today(a.id)).toMatchObject({ requests: 2, prompt: 100, completion: 8 });
  }, TIMEOUT_MS);

  it("usage whose waiting flush was lost (its request's waitUntil cancelled) is written by the next settlement on the isolate, at once", async () => {
    const a = await newTenant("f");
    await awayFromMinuteEnd();
    expect((await complete(a.key)).status).toBe(200);
    const ledger = ledgerFor(a.id, utcDay(Date.now()));
    // Its flush, due 1 s from now, is waited for under its request's waitUntil: make that waiter find nothing due,
    // then leave the usage due in the past with nobody waiting for it (what a cancelled waitUntil leaves behind).
    ledger.flushDue = Date.now() + 3_600_000;
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await today(a.id)).toMatchObject({ requests: 0 });
    ledger.flushDue = Date.now() - 1;
    expect((await complete(a.key)).status).toBe(200);
    await afterResponseSettled();
    expect(await today(a.id)).toMatchObject({ requests: 2, prompt: 40, completion: 8, reserved: 0 });
  }, TIMEOUT_MS);
});
