// The accounting of one isolate's lease of a tenant's limits (workers/src/limits/isolate-ledger.ts),
// without D1: what requests take and give back, and what a flush writes and gives back.
import { describe, expect, it } from "vitest";
import { IsolateLedger, track, waitForRunning } from "../../workers/src/limits/isolate-ledger.js";

const MINUTE = 29_000_000;
const T0 = MINUTE * 60_000 + 1_000;

/** held = free + Σ reservations in flight + pending billed tokens. */
function expectInvariant(ledger: IsolateLedger, inFlightTokens: number): void {
  const pendingBilled = ledger.pending.promptTokens + ledger.pending.completionTokens;
  expect(ledger.held).toBe(ledger.free + inFlightTokens + pendingBilled);
}

describe("IsolateLedger", () => {
  it("requests take a slot and their tokens only while both are there; billed tokens wait for the flush, the rest go back to the lease", () => {
    const ledger = new IsolateLedger("t", "2026-11-30");
    expect(ledger.tryTake(25, MINUTE, T0)).toBe(false); // nothing leased yet
    ledger.addSlots(2, MINUTE);
    ledger.addTokens(60);
    expect(ledger.tryTake(25, MINUTE, T0)).toBe(true);
    expect(ledger.tryTake(25, MINUTE, T0)).toBe(true);
    expect(ledger.tryTake(5, MINUTE, T0)).toBe(false); // tokens left (10), no slot left
    expectInvariant(ledger, 50);
    ledger.settle(25, { promptTokens: 20, completionTokens: 4 }, ["a", "b", "a"]);
    ledger.release(25);
    expect(ledger.free).toBe(10 + 1 + 25);
    expect(ledger.pending).toMatchObject({ requests: 1, promptTokens: 20, completionTokens: 4 });
    expect([...ledger.pending.adapterUses]).toEqual([["a", 1], ["b", 1]]); // a mix counts each adapter once
    expectInvariant(ledger, 0);
    // Slots belong to their minute.
    ledger.addSlots(1, MINUTE);
    expect(ledger.slotsOf(MINUTE + 1)).toBe(0);
    expect(ledger.tryTake(5, MINUTE + 1, T0 + 60_000)).toBe(false);
  });

  it("a flush takes the pending usage; the lease is given back only once nothing is in flight and nothing was taken for idleMs", () => {
    const ledger = new IsolateLedger("t", "2026-11-30");
    ledger.addSlots(8, MINUTE);
    ledger.addTokens(100);
    expect(ledger.tryTake(25, MINUTE, T0)).toBe(true);
    expect(ledger.tryTake(25, MINUTE, T0)).toBe(true);
    ledger.settle(25, { promptTokens: 20, completionTokens: 4 }, []);
    // One request still in flight: usage written, lease kept.
    const busy = ledger.takeFlush(T0 + 5_000, 1_000);
    expect(busy).toMatchObject({ returnedTokens: 0, returnedSlots: 0, leaseKept: true });
    expect(busy.usage).toMatchObject({ requests: 1, promptTokens: 20, completionTokens: 4 });
    expect(ledger.held).toBe(76);
    expectInvariant(ledger, 25);
    ledger.settle(25, { promptTokens: 30, completionTokens: 4 }, []); // billed beyond its reservation (an estimated prompt)
    // Nothing in flight, but a request was taken 500 ms ago: kept.
    expect(ledger.takeFlush(T0 + 500, 1_000)).toMatchObject({ returnedTokens: 0, leaseKept: true });
    // Idle for 1 s: the free tokens (100 − 24 − 34) and the 6 unused slots of the minute go back.
    const idle = ledger.takeFlush(T0 + 1_000, 1_000);
    expect(idle).toMatchObject({ returnedTokens: 42, returnedSlots: 6, minute: MINUTE, leaseKept: false });
    expect(idle.usage.requests).toBe(0); // the second request's usage went with the previous flush
    expect(ledger.held).toBe(0);
    expect(ledger.empty).toBe(true);
  });

  it("waitForRunning: waits for another request's refill or flush until it settles (even by failing), at most until it is stale", async () => {
    expect(waitForRunning(null)).toBeNull();
    let resolve!: () => void;
    const settling = track(new Promise<void>((r) => (resolve = r)));
    const waiting = waitForRunning(settling, Date.now(), 60_000)!;
    resolve();
    await waiting;
    await waitForRunning(track(Promise.reject(new Error("D1 failed"))), Date.now(), 60_000);
    const never = track(new Promise(() => {}));
    const t0 = Date.now();
    await waitForRunning(never, t0, 80); // gives up once stale
    expect(Date.now() - t0).toBeGreaterThanOrEqual(70);
    expect(waitForRunning(never, t0 + 80, 80)).toBeNull(); // stale: the caller goes ahead on its own
  });
});
