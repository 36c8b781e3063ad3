import { minuteOf } from "../util/time.js";
import type { UsageBatch } from "./usage-batch.js";

/**
 * What one isolate holds of one tenant's limits for one UTC day, so that the common request passes
 * the gate without a D1 round trip (limits/enforce.ts) and its usage is written in batches
 * (limits/reservation.ts).
 *
 * Semantics (all counts are the tenant's, for `day`):
 * - `held`: tokens this isolate has reserved in D1 (`usage_daily.reserved_tokens` of `day`): its
 *   **lease**. D1 counts them against the daily limit like any reservation, so on every isolate
 *   billed + reserved ≤ the limit still holds: leasing never lets a tenant overshoot it.
 * - Invariant: held = free + Σ tokens of the requests in flight + pending.billedTokens.
 *   A request takes its reservation from `free`; when it ends, its billed tokens become pending (to
 *   be moved from reserved to billed in D1 by the next flush) and the rest of its reservation goes
 *   back to `free`; a request not served gives all of it back to `free`.
 * - `slots`: requests of `minute` this isolate counted in D1 (`rate_windows`) and has not used yet.
 * - A lease is given back (free tokens and unused slots) by the flush that finds the isolate idle:
 *   nothing in flight and nothing taken for `idleMs` (USAGE_FLUSH_MS). So what an isolate holds
 *   beyond its requests in flight is at most one block (BUDGET_LEASE_TOKENS, RATE_LEASE_REQUESTS),
 *   and only while it serves the tenant; an isolate that dies holding a lease leaves it reserved
 *   until the UTC day ends (as a reservation never settled), and its pending usage (and a batch it
 *   was still retrying: `unwritten`) unwritten.
 * Cost: O(1) per request, plus O(adapters of the mix) per settlement.
 */
export class IsolateLedger {
  held = 0;
  free = 0;
  slots = 0;
  minute = -1;
  inFlight = 0;
  lastTakenAt = 0;
  pending = emptyPending();
  /**
   * The gate's D1 refill running for this ledger (one at a time; other requests wait for it, at most
   * until it is stale: `runningWork`).
   */
  refill: RunningWork | null = null;
  /** The flush being written (a refill waits for it: its given-back tokens are then in D1). */
  flushing: RunningWork | null = null;
  /**
   * When the pending usage is due to be written (epoch ms), or null when nothing waits for a flush.
   * A timestamp, not a promise: each settlement waits for it under its own request's waitUntil
   * (limits/reservation.ts), so no request's lifetime carries another's flush.
   */
  flushDue: number | null = null;
  /**
   * Whether some request's context waits for `flushDue` (scheduleFlush); false for a due time left
   * by a context past FLUSH_CHAIN_MS, which a younger waiting context then takes over.
   */
  flushCarried = false;
  /**
   * The usage batch taken out of this ledger and not known to be applied: its write under way, or
   * failed and waiting for its retry (limits/usage-batch.ts: a retry of an applied batch changes
   * nothing). At most one: usage settled meanwhile stays pending, written after it.
   */
  unwritten: UsageBatch | null = null;

  constructor(
    readonly tenantId: string,
    /** UTC day of the budget (YYYY-MM-DD). */
    readonly day: string,
  ) {}

  /** Takes a slot of `minute` and `tokens` from what this isolate holds, if both are there. */
  tryTake(tokens: number, minute: number, now: number): boolean {
    if (this.slotsOf(minute) < 1 || this.free < tokens) return false;
    this.slots--;
    this.free -= tokens;
    this.inFlight++;
    this.lastTakenAt = now;
    return true;
  }

  /** Unused slots of `minute` (those of an earlier minute are void). */
  slotsOf(minute: number): number {
    return this.minute === minute ? this.slots : 0;
  }

  /** Takes one slot of `minute` if there is one (a request refused before the gate still counts). */
  trySpendSlot(minute: number): boolean {
    if (this.slotsOf(minute) < 1) return false;
    this.slots--;
    return true;
  }

  /** Slots D1 granted for `minute` (replacing any of an earlier minute). */
  addSlots(count: number, minute: number): void {
    if (this.minute !== minute) {
      this.minute = minute;
      this.slots = 0;
    }
    this.slots += count;
  }

  /** Tokens D1 reserved for this isolate. */
  addTokens(tokens: number): void {
    this.held += tokens;
    this.free += tokens;
  }

  /** A request that took `tokens` ended, billed `billed` (may exceed `tokens` when its prompt was estimated). */
  settle(tokens: number, billed: { promptTokens: number; completionTokens: number }, adapterIds: readonly string[]): void {
    const used = billed.promptTokens + billed.completionTokens;
    this.inFlight--;
    this.free += tokens - used;
    this.pending.requests++;
    this.pending.promptTokens += billed.promptTokens;
    this.pending.completionTokens += billed.completionTokens;
    for (const id of new Set(adapterIds)) this.pending.adapterUses.set(id, (this.pending.adapterUses.get(id) ?? 0) + 1);
  }

  /** A request that took `tokens` was not served: all of them go back to the lease. */
  release(tokens: number): void {
    this.inFlight--;
    this.free += tokens;
  }

  /**
   * What the next flush writes, taken out of the ledger: the pending usage (billed tokens move from
   * reserved to billed), and, when the isolate is idle (nothing in flight, nothing taken for
   * `idleMs`), the lease given back: its free tokens and its unused slots of the current minute.
   */
  takeFlush(now: number, idleMs: number): LedgerFlush {
    const usage = this.pending;
    this.pending = emptyPending();
    const idle = this.inFlight === 0 && now - this.lastTakenAt >= idleMs;
    const returnedTokens = idle ? Math.max(0, this.free) : 0;
    const minute = minuteOf(now);
    const returnedSlots = idle ? this.slotsOf(minute) : 0;
    const billedTokens = usage.promptTokens + usage.completionTokens;
    this.held -= billedTokens + returnedTokens;
    this.free -= returnedTokens;
    if (idle) this.slots = 0;
    return { usage, returnedTokens, returnedSlots, minute, leaseKept: !idle && (this.free > 0 || this.slotsOf(minute) > 0) };
  }

  /** Nothing held, pending or in flight: the ledger can be dropped. */
  get empty(): boolean {
    return this.held <= 0 && this.inFlight === 0 && this.pending.requests === 0 && this.slots === 0 && this.unwritten === null;
  }
}

export interface PendingUsage {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  /** Adapter id → served requests that used it (the marketplace's use count). */
  adapterUses: Map<string, number>;
}

export interface LedgerFlush {
  usage: PendingUsage;
  /** Free lease tokens given back (reserved_tokens −= this, with the billed tokens). */
  returnedTokens: number;
  /** Unused request slots of `minute` given back (rate_windows count −= this). */
  returnedSlots: number;
  minute: number;
  /** The isolate was not idle and still holds a lease: look again later. */
  leaseKept: boolean;
}

function emptyPending(): PendingUsage {
  return { requests: 0, promptTokens: 0, completionTokens: 0, adapterUses: new Map() };
}

/** This isolate's ledgers, by tenant and UTC day. */
const ledgers = new Map<string, IsolateLedger>();

export function ledgerFor(tenantId: string, day: string): IsolateLedger {
  const key = `${tenantId}|${day}`;
  let ledger = ledgers.get(key);
  if (!ledger) {
    ledger = new IsolateLedger(tenantId, day);
    ledgers.set(key, ledger);
  }
  return ledger;
}

/** The ledger of this tenant and day, if this isolate has one. */
export function existingLedger(tenantId: string, day: string): IsolateLedger | undefined {
  return ledgers.get(`${tenantId}|${day}`);
}

/** Drops a ledger that holds nothing any more (after a flush gave its lease back). */
export function dropIfEmpty(ledger: IsolateLedger): void {
  const key = `${ledger.tenantId}|${ledger.day}`;
  if (ledger.empty && !ledger.refill && ledger.flushDue === null && ledgers.get(key) === ledger) ledgers.delete(key);
}

/** A D1 round trip that other requests of the isolate wait for: the promise and when it started. */
export interface RunningWork {
  promise: Promise<unknown>;
  since: number;
}

/**
 * How long another request waits for a refill or flush started by someone else before treating it
 * as lost. On Cloudflare a request's pending I/O can be cancelled (its client went away, its
 * waitUntil ran past 30 s): a promise it started may then never settle, and waiting for it would
 * hang every later request of the tenant on this isolate. A D1 round trip takes milliseconds.
 */
export const RUNNING_WORK_STALE_MS = 10_000;

/** Starts tracking `promise` as running work (see `runningWork`). */
export function track(promise: Promise<unknown>, now = Date.now()): RunningWork {
  return { promise, since: now };
}

/**
 * What to wait for before looking again, for a request that needs `work` done: its promise (errors
 * ignored), or at most until it turns stale; null when there is none or it is stale already (the
 * caller then goes ahead on its own).
 */
export function waitForRunning(work: RunningWork | null, now = Date.now(), staleMs = RUNNING_WORK_STALE_MS): Promise<void> | null {
  if (!work) return null;
  const left = work.since + staleMs - now;
  if (left <= 0) return null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const stale = new Promise<void>((resolve) => (timer = setTimeout(resolve, left)));
  const settled = work.promise.then(
    () => undefined,
    () => undefined,
  );
  return Promise.race([settled, stale]).finally(() => {
    if (timer !== null) clearTimeout(timer);
  });
}

/** Forgets every ledger of this isolate (tests: storage is reset between them). */
export function forgetLedgers(): void {
  ledgers.clear();
}
