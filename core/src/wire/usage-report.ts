/**
 * The public usage report (`GET /v1/usage`): the edge builds it (workers/src/limits/usage-report.ts),
 * the API client and the web app read it. Plain types, one definition; the edge's OpenAPI schema of
 * it is held equal by test/worker/client-types.check.ts.
 */

/** One UTC day of a tenant's usage. */
export interface DayUsage {
  /** UTC day, YYYY-MM-DD. */
  date: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** A day of the report: its usage, and the tokens reserved on it by requests not settled. */
export interface DayUsageRow extends DayUsage {
  /**
   * Today: tokens held by requests in flight (each its prompt bound + max_tokens, counted against
   * tokens_per_day until it ends). An earlier day: reservations whose request never settled (its
   * isolate died); they expired with the day.
   */
  reserved_tokens: number;
}

export interface UsageReport {
  object: "list";
  data: DayUsageRow[];
  totals: Omit<DayUsage, "date">;
  /** The tenant's effective limits (its own, else the worker's defaults). */
  limits: { requests_per_minute: number; tokens_per_day: number };
}
