import { sql } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { usesIncrement } from "../adapters/queries.js";
import { batchOf, type Db } from "../db/client.js";
import { usageDaily } from "../db/schema.js";
import { log } from "../logging/log.js";
import { dropIfEmpty, track, waitForRunning, type IsolateLedger, type LedgerFlush } from "./isolate-ledger.js";
import { giveBackSlots } from "./rate-limit.js";

/** What one request is billed for. */
export interface Billed {
  promptTokens: number;
  completionTokens: number;
}

/** When settled usage is written: `flushMs` after the first unwritten one (0: at once); `schedule` keeps that work alive (ctx.waitUntil). */
export interface FlushPolicy {
  flushMs: number;
  schedule: (work: Promise<unknown>) => void;
}

/**
 * A request's hold on the tenant's daily token budget, taken from this isolate's lease by the gate
 * (enforce.ts, isolate-ledger.ts) before dispatch, settled once after the response.
 *
 * Semantics: the first call of `settle` or `release` ends the hold: its tokens go back to the
 * lease, and with `settle` the request, its billed tokens and a use of each adapter of its mix
 * become pending usage. Every later call returns the first call's promise (exactly once, however
 * many paths reach the end: stream end, client disconnect, runner failure, dispatch error).
 * Pending usage is written in one D1 batch (one round trip, one transaction) by the ledger's next
 * flush: `flushMs` after the first unwritten settlement, coalescing every settlement meanwhile
 * (`now`: at once, as a stream does before its `[DONE]`). The flush moves the billed tokens from
 * reserved to billed on the day they were reserved, and gives the lease back when the isolate is
 * idle. A failed write is logged; its tokens then stay reserved until the day ends (as a
 * reservation whose isolate died before settling).
 */
export class BudgetReservation {
  private done: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly ledger: IsolateLedger,
    readonly tokens: number,
    private readonly policy: FlushPolicy,
    private readonly requestId?: string,
  ) {}

  get tenantId(): string {
    return this.ledger.tenantId;
  }

  /** UTC day the tokens were reserved on (YYYY-MM-DD). */
  get day(): string {
    return this.ledger.day;
  }

  /** Records the served request (billed tokens, adapter uses) and ends the hold; `now`: written at once, not coalesced. */
  settle(billed: Billed, adapterIds: readonly string[], when: "soon" | "now" = "soon"): Promise<void> {
    return (this.done ??= this.end(() => this.ledger.settle(this.tokens, billed, adapterIds), when));
  }

  /** Ends the hold and records nothing (the request was not served). */
  release(): Promise<void> {
    return (this.done ??= this.end(() => this.ledger.release(this.tokens), "soon"));
  }

  private end(account: () => void, when: "soon" | "now"): Promise<void> {
    account();
    if (when === "now" || this.policy.flushMs === 0) return flushLedger(this.db, this.ledger, this.policy, this.requestId);
    scheduleFlush(this.db, this.ledger, this.policy, this.requestId);
    return Promise.resolve();
  }
}

/**
 * Longest time one request's waitUntil keeps looking again at a lease it kept (Cloudflare cancels
 * waitUntil work 30 s after the response): past it, the next settlement on the isolate carries the
 * flush (every request that takes from the lease settles or releases it, and so schedules one).
 */
const FLUSH_CHAIN_MS = 20_000;

/**
 * Makes the ledger's pending usage due `flushMs` from now (or keeps an earlier due time), and waits
 * for it under this request's own waitUntil: whichever waiting request wakes first at the due time
 * writes the flush, the others find nothing due. No promise is shared between requests.
 */
function scheduleFlush(db: Db, ledger: IsolateLedger, policy: FlushPolicy, requestId?: string, chainStart = Date.now()): void {
  const now = Date.now();
  if (ledger.flushDue === null) ledger.flushDue = now + policy.flushMs;
  const due = ledger.flushDue;
  const waiting = new Promise((resolve) => setTimeout(resolve, Math.max(0, due - now))).then(() => {
    if (ledger.flushDue === null || Date.now() < ledger.flushDue) return; // written already, or due later (its setter waits for it)
    return flushLedger(db, ledger, policy, requestId, chainStart);
  });
  policy.schedule(waiting);
}

/**
 * Writes what the ledger has pending (after any flush already being written, unless that one is
 * stale): one batch. A lease kept because the isolate was not idle is looked at again `flushMs`
 * later, so it is given back within about two `flushMs` of the isolate's last request.
 */
async function flushLedger(db: Db, ledger: IsolateLedger, policy: FlushPolicy, requestId?: string, chainStart = Date.now()): Promise<void> {
  for (let wait = waitForRunning(ledger.flushing); wait; wait = waitForRunning(ledger.flushing)) await wait;
  ledger.flushDue = null;
  const work = ledger.takeFlush(Date.now(), policy.flushMs);
  const writing = writeFlush(db, ledger, work, requestId);
  const running = track(writing);
  ledger.flushing = running;
  try {
    await writing;
  } finally {
    if (ledger.flushing === running) ledger.flushing = null;
  }
  if (work.leaseKept && policy.flushMs > 0) {
    if (Date.now() - chainStart < FLUSH_CHAIN_MS) scheduleFlush(db, ledger, policy, requestId, chainStart);
    else ledger.flushDue ??= Date.now() + policy.flushMs; // the next settlement here waits for it
  }
  dropIfEmpty(ledger);
}

/** The flush's D1 batch: usage and the reservation (with what is given back), use counts, unused slots. */
async function writeFlush(db: Db, ledger: IsolateLedger, work: LedgerFlush, requestId?: string): Promise<void> {
  const { usage, returnedTokens, returnedSlots } = work;
  const p = usage.promptTokens;
  const c = usage.completionTokens;
  const released = p + c + returnedTokens;
  const statements: BatchItem<"sqlite">[] = [];
  if (usage.requests > 0 || released > 0) {
    statements.push(
      db
        .insert(usageDaily)
        .values({ tenantId: ledger.tenantId, day: ledger.day, requests: usage.requests, promptTokens: p, completionTokens: c })
        .onConflictDoUpdate({
          target: [usageDaily.tenantId, usageDaily.day],
          set: {
            requests: sql`${usageDaily.requests} + ${usage.requests}`,
            promptTokens: sql`${usageDaily.promptTokens} + ${p}`,
            completionTokens: sql`${usageDaily.completionTokens} + ${c}`,
            reservedTokens: sql`max(0, ${usageDaily.reservedTokens} - ${released})`,
          },
        }),
    );
  }
  // The marketplace's use count ("most used"): every adapter of each served mix, grouped by count.
  const byCount = new Map<number, string[]>();
  for (const [id, n] of usage.adapterUses) byCount.set(n, [...(byCount.get(n) ?? []), id]);
  for (const [n, ids] of byCount) {
    const uses = usesIncrement(db, ids, n);
    if (uses) statements.push(uses);
  }
  if (returnedSlots > 0) statements.push(giveBackSlots(db, ledger.tenantId, work.minute, returnedSlots));
  if (statements.length === 0) return;
  try {
    if (statements.length === 1) await statements[0];
    else await db.batch(batchOf(statements));
  } catch (e) {
    log("error", "usage settlement failed", {
      request_id: requestId,
      tenant: ledger.tenantId,
      day: ledger.day,
      requests: usage.requests,
      billed: { promptTokens: p, completionTokens: c },
      released_tokens: released,
      error: e instanceof Error ? e.message : String(e),
    });
  }
}
