import { z } from "@hono/zod-openapi";
import { tenantScope } from "../auth/require-tenant.js";
import { errorResponses } from "../errors/error-schema.js";
import { usageReport } from "../limits/usage-report.js";
import { jsonResponse, listOf, newRouter, tenantRouteGroup } from "./router.js";

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD");
const DayUsage = z.object({
  date: z.string(),
  requests: z.number().int(),
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

const DayUsageRow = DayUsage.extend({
  reserved_tokens: z.number().int().openapi({
    description:
      "Tokens reserved on that day and not settled: today, what the edge's isolates hold for requests in flight (prompt bound + max_tokens each) and for the next ones (at most one block per isolate, given back about a second after its last request), and usage not written yet — all counted against tokens_per_day; an earlier day, what an isolate held when it ended (expired with the day)",
  }),
});

export const UsageSchema = listOf(DayUsageRow)
  .extend({
    totals: DayUsage.omit({ date: true }),
    limits: z.object({ requests_per_minute: z.number().int(), tokens_per_day: z.number().int() }),
  })
  .openapi("Usage");

const usageRoute = tenantRouteGroup("usage").get("/v1/usage", {
  summary: "The caller's usage per UTC day (default: the last 30 days) and its limits",
  request: { query: z.object({ from: Day.optional(), to: Day.optional() }) },
  responses: { 200: jsonResponse("Usage", UsageSchema), ...errorResponses(400, 401) },
});

export const usageRoutes = newRouter().openapi(usageRoute, async (c) => {
  const report = await usageReport(tenantScope(c), c.req.valid("query"));
  return c.json({ object: "list" as const, ...report }, 200);
});
