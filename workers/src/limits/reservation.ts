import type { Db } from "../db/client.js";
import { log } from "../logging/log.js";
import { dropIfEmpty, track, waitForRunning, type IsolateLedger } from "./isolate-ledger.js";
import { newUsageBatch, USAGE_BATCH_RETRY_MS, usageRetryDelayMs, writeUsageBatch, type UsageBatch } from "./usage-batch.js";

/** What one request is billed for. */
export interface Billed {
  promptTokens: number;
  completionTokens: number;
}

/** When settled usage is written: `flushMs` after the first unwritten one (0: at once); `schedule` keeps that work alive (ctx.waitUntil). */
export interface FlushPolicy {
  flushMs: number;
  schedule: (work: Promise<unknown>) => void;
  /** How long this request's context looks again at what a flush left to do (default FLUSH_CHAIN_MS; tests shorten it). */
  chainMs?: number;
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
 * idle. Each flush is a batch with its own id (limits/usage-batch.ts): a write that fails is
 * logged and retried with backoff (a retry of a batch that was in fact applied changes nothing),
 * so usage is billed, and the reserved tokens moved or given back, exactly once.
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
 * Longest time one request's waitUntil keeps looking again at a lease it kept or a batch it must
 * retry (Cloudflare cancels waitUntil work 30 s after the response): past it, another request's
 * context carries the flush — one that waits for the same due time (it takes the due time over),
 * else the next settlement on the isolate (every request that takes from the lease settles or
 * releases it, and so schedules one).
 */
export const FLUSH_CHAIN_MS = 20_000;

/**
 * Whether a context whose flush chain started at `chainStart` looks again at `next` (epoch ms):
 * only when that time itself is within FLUSH_CHAIN_MS of the chain's start, so that no context
 * waits for a retry past Cloudflare's waitUntil limit and still counts as carrying it.
 */
const carriesOn = (policy: FlushPolicy, chainStart: number, next: number) => next - chainStart < (policy.chainMs ?? FLUSH_CHAIN_MS);

/**
 * Makes the ledger's pending usage due `flushMs` from now (or at `due`; an earlier due time is
 * kept), and waits for it under this request's own waitUntil: whichever waiting request wakes
 * first at the due time writes the flush, the others find nothing due. No promise is shared
 * between requests.
 */
function scheduleFlush(db: Db, ledger: IsolateLedger, policy: FlushPolicy, requestId?: string, chainStart = Date.now(), due?: number): void {
  const now = Date.now();
  ledger.flushDue ??= due ?? now + policy.flushMs;
  ledger.flushCarried = true;
  const at = ledger.flushDue;
  const waiting = new Promise((resolve) => setTimeout(resolve, Math.max(0, at - now))).then(() => whenDue(db, ledger, policy, requestId, chainStart));
  policy.schedule(waiting);
}

/**
 * A context's timer fired: writes the flush if it is due; else (written already, or due later)
 * waits for a flush another context is writing, and takes over a due time it leaves behind that no
 * context waits for (its own context too old to carry it: FLUSH_CHAIN_MS), while this one is young.
 */
async function whenDue(db: Db, ledger: IsolateLedger, policy: FlushPolicy, requestId: string | undefined, chainStart: number): Promise<void> {
  for (;;) {
    if (ledger.flushDue !== null && Date.now() >= ledger.flushDue) return flushLedger(db, ledger, policy, requestId, chainStart);
    const writing = waitForRunning(ledger.flushing);
    if (!writing) break;
    await writing;
  }
  if (ledger.flushDue !== null && !ledger.flushCarried && carriesOn(policy, chainStart, ledger.flushDue)) scheduleFlush(db, ledger, policy, requestId, chainStart);
}

/**
 * Writes what the ledger has due (after any flush already being written, unless that one is
 * stale): a batch whose earlier write failed, once its retry time has come, then the pending
 * usage — each one D1 batch (limits/usage-batch.ts); never a new batch while another context's
 * batch is unwritten (its retry comes first). What is left to do is looked at again from this
 * context when due within FLUSH_CHAIN_MS of its chain's start, else left due for another (an
 * error is logged when no context takes a failed batch over: reportUncarried): a lease kept because
 * the isolate was not idle `flushMs` later (so it is given back within about two `flushMs` of the
 * isolate's last request), a failed batch at its retry time (1 s, 2 s, 4 s, … 30 s after).
 */
async function flushLedger(db: Db, ledger: IsolateLedger, policy: FlushPolicy, requestId?: string, chainStart = Date.now()): Promise<void> {
  for (let wait = waitForRunning(ledger.flushing); wait; wait = waitForRunning(ledger.flushing)) await wait;
  ledger.flushDue = null;
  // The follow-up is settled before the flush stops running, so a context waiting for it sees what it left due.
  const running = track(
    writeDue(db, ledger, policy.flushMs, requestId).then((next) => {
      if (next === null) return;
      if (carriesOn(policy, chainStart, next)) scheduleFlush(db, ledger, policy, requestId, chainStart, next);
      else if (ledger.flushDue === null) {
        ledger.flushDue = next; // taken over by a younger waiting context, else by the next settlement here
        ledger.flushCarried = false;
      }
    }),
  );
  ledger.flushing = running;
  try {
    await running.promise;
  } finally {
    if (ledger.flushing === running) ledger.flushing = null;
  }
  dropIfEmpty(ledger);
  if (ledger.unwritten && !ledger.flushCarried) await reportUncarried(ledger, requestId);
}

/**
 * A failed batch left due with no context waiting for its retry: once the contexts waiting for
 * this flush had their turn to take it over (a macrotask later), logs it as an error with its
 * figures if none did. It is then retried only by a later settlement of this tenant and day on
 * this isolate — never if the tenant goes quiet or the day ends first (its tokens then stay
 * reserved until UTC midnight, as when an isolate dies).
 */
async function reportUncarried(ledger: IsolateLedger, requestId?: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  const batch = ledger.unwritten;
  if (!batch || ledger.flushCarried || ledger.flushDue === null) return;
  log("error", "usage batch unwritten, no request left to retry it", { request_id: requestId, ...batchFigures(ledger, batch), retry_at: new Date(ledger.flushDue).toISOString() });
}

/** What a log line says of a batch: whose usage, which batch, and its figures. */
function batchFigures(ledger: IsolateLedger, batch: UsageBatch): Record<string, unknown> {
  const { usage, returnedTokens } = batch.flush;
  return {
    tenant: ledger.tenantId,
    day: ledger.day,
    batch: batch.id,
    attempts: batch.attempts,
    requests: usage.requests,
    billed: { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens },
    released_tokens: usage.promptTokens + usage.completionTokens + returnedTokens,
  };
}

/** The writes of one flush (see flushLedger); returns when to look again (epoch ms), or null. */
async function writeDue(db: Db, ledger: IsolateLedger, flushMs: number, requestId?: string): Promise<number | null> {
  const earlier = ledger.unwritten;
  if (earlier) {
    if (Date.now() < earlier.retryAt) return earlier.retryAt;
    if (!(await attemptWrite(db, ledger, earlier, requestId))) return earlier.retryAt;
  }
  // Another context's batch (written meanwhile by a context that found this one's write stale, and failed):
  // its retry comes first, and it is never replaced — at most one unwritten batch.
  if (ledger.unwritten) return Math.max(ledger.unwritten.retryAt, Date.now());
  const flush = ledger.takeFlush(Date.now(), flushMs);
  const batch = newUsageBatch(ledger.tenantId, ledger.day, flush);
  if (batch) {
    ledger.unwritten = batch;
    if (!(await attemptWrite(db, ledger, batch, requestId))) return batch.retryAt;
  }
  return flush.leaseKept && flushMs > 0 ? Date.now() + flushMs : null;
}

/**
 * One write of `batch`; true when it is done with (applied, or given up after
 * USAGE_BATCH_RETRY_MS), false when it is to be retried at its `retryAt`. A write that failed may
 * have been applied (its reply lost): the retry then changes nothing.
 */
async function attemptWrite(db: Db, ledger: IsolateLedger, batch: UsageBatch, requestId?: string): Promise<boolean> {
  batch.firstTriedAt ||= Date.now();
  try {
    await writeUsageBatch(db, batch);
  } catch (e) {
    batch.attempts++;
    const giveUp = Date.now() - batch.firstTriedAt >= USAGE_BATCH_RETRY_MS;
    log(giveUp ? "error" : "warn", giveUp ? "usage batch given up" : "usage write failed, will retry", {
      request_id: requestId,
      ...batchFigures(ledger, batch),
      error: e instanceof Error ? e.message : String(e),
    });
    if (!giveUp) {
      batch.retryAt = Date.now() + usageRetryDelayMs(batch.attempts);
      return false;
    }
  }
  if (ledger.unwritten === batch) ledger.unwritten = null;
  return true;
}
