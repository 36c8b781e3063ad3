import { sql } from "drizzle-orm";
import { usesIncrement } from "../adapters/queries.js";
import type { Db } from "../db/client.js";
import { usageDaily } from "../db/schema.js";
import { log } from "../logging/log.js";

/** What one request is billed for. */
export interface Billed {
  promptTokens: number;
  completionTokens: number;
}

/**
 * A request's hold on the tenant's daily token budget (`usage_daily.reserved_tokens` of the UTC
 * day it was taken on, see enforce.ts): taken before dispatch, settled once after the response.
 *
 * Semantics: the first call of `settle` or `release` writes, in one D1 batch (one round trip,
 * one transaction): the reservation is given back, and with `settle` the request, its billed
 * tokens and a use of each adapter of its mix are recorded on that same day. Every later call
 * returns the first call's promise (exactly once, however many paths reach the end: stream
 * end, client disconnect, runner failure, dispatch error). A failed write is logged; the
 * reservation then stays held until the day ends (as one whose isolate died before settling).
 */
export class BudgetReservation {
  private done: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    readonly tenantId: string,
    /** UTC day the tokens were reserved on (YYYY-MM-DD). */
    readonly day: string,
    readonly tokens: number,
    private readonly requestId?: string,
  ) {}

  /** Records the served request (billed tokens, adapter uses) and gives the reservation back. */
  settle(billed: Billed, adapterIds: readonly string[]): Promise<void> {
    return (this.done ??= this.write(billed, adapterIds));
  }

  /** Gives the reservation back and records nothing (the request was not served). */
  release(): Promise<void> {
    return (this.done ??= this.write(null, []));
  }

  private async write(billed: Billed | null, adapterIds: readonly string[]): Promise<void> {
    const p = billed?.promptTokens ?? 0;
    const c = billed?.completionTokens ?? 0;
    const requests = billed ? 1 : 0;
    const usage = this.db
      .insert(usageDaily)
      .values({ tenantId: this.tenantId, day: this.day, requests, promptTokens: p, completionTokens: c })
      .onConflictDoUpdate({
        target: [usageDaily.tenantId, usageDaily.day],
        set: {
          requests: sql`${usageDaily.requests} + ${requests}`,
          promptTokens: sql`${usageDaily.promptTokens} + ${p}`,
          completionTokens: sql`${usageDaily.completionTokens} + ${c}`,
          reservedTokens: sql`max(0, ${usageDaily.reservedTokens} - ${this.tokens})`,
        },
      });
    // The marketplace's use count ("most used"): every adapter of the served mix.
    const uses = billed ? usesIncrement(this.db, adapterIds) : null;
    try {
      if (uses) await this.db.batch([usage, uses]);
      else await usage;
    } catch (e) {
      log("error", "usage settlement failed", {
        request_id: this.requestId,
        reserved_tokens: this.tokens,
        billed,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
}
