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

export interface UsageReport {
  object: "list";
  data: DayUsage[];
  totals: Omit<DayUsage, "date">;
  /** The tenant's effective limits (its own, else the worker's defaults). */
  limits: { requests_per_minute: number; tokens_per_day: number };
}
