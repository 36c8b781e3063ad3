import type { DayUsage, UsageReport } from "#core/wire/usage-report";
import type { TenantScope } from "../app-env.js";
import { badRequest } from "../errors/api-error.js";
import { utcDay } from "../util/time.js";
import { tenantLimits } from "./config.js";
import { usageBetween } from "./usage.js";

/** The caller's usage per UTC day in [from, to] (default: the 30 days up to today), its totals and effective limits. */
export async function usageReport(s: TenantScope, range: { from?: string; to?: string }, now = Date.now()): Promise<Omit<UsageReport, "object">> {
  const to = range.to ?? utcDay(now);
  const from = range.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000);
  if (from > to) throw badRequest("`from` is after `to`");
  const rows = await usageBetween(s.db, s.tenant.id, from, to);
  const data = rows.map((r) => ({
    date: r.day,
    requests: r.requests,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    reserved_tokens: r.reservedTokens,
  }));
  const totals = data.reduce<Omit<DayUsage, "date">>(
    (t, d) => ({
      requests: t.requests + d.requests,
      prompt_tokens: t.prompt_tokens + d.prompt_tokens,
      completion_tokens: t.completion_tokens + d.completion_tokens,
      total_tokens: t.total_tokens + d.total_tokens,
    }),
    { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  );
  const limits = tenantLimits(s.env, s.tenant);
  return { data, totals, limits: { requests_per_minute: limits.rpm, tokens_per_day: limits.tokensPerDay } };
}
