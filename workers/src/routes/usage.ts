import { createRoute, z } from "@hono/zod-openapi";
import { requireTenant, tenantOf } from "../auth/require-tenant.js";
import { badRequest } from "../errors/api-error.js";
import { errorResponses } from "../errors/error-schema.js";
import { tenantLimits } from "../limits/config.js";
import { usageBetween } from "../limits/usage.js";
import { utcDay } from "../util/time.js";
import { newRouter, tenantSecurity } from "./router.js";

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "YYYY-MM-DD");
const DayUsage = z.object({
  date: z.string(),
  requests: z.number().int(),
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
});

const usageRoute = createRoute({
  method: "get",
  path: "/v1/usage",
  tags: ["usage"],
  summary: "The caller's usage per UTC day (default: the last 30 days) and its limits",
  security: tenantSecurity,
  middleware: [requireTenant] as const,
  request: { query: z.object({ from: Day.optional(), to: Day.optional() }) },
  responses: {
    200: {
      description: "Usage",
      content: {
        "application/json": {
          schema: z
            .object({
              object: z.literal("list"),
              data: z.array(DayUsage),
              totals: DayUsage.omit({ date: true }),
              limits: z.object({ requests_per_minute: z.number().int(), tokens_per_day: z.number().int() }),
            })
            .openapi("Usage"),
        },
      },
    },
    ...errorResponses(400, 401),
  },
});

export const usageRoutes = newRouter().openapi(usageRoute, async (c) => {
  const tenant = tenantOf(c);
  const q = c.req.valid("query");
  const now = Date.now();
  const to = q.to ?? utcDay(now);
  const from = q.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000);
  if (from > to) throw badRequest("`from` is after `to`");
  const rows = await usageBetween(c.var.db, tenant.id, from, to);
  const data = rows.map((r) => ({
    date: r.day,
    requests: r.requests,
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
  }));
  const totals = data.reduce(
    (t, d) => ({
      requests: t.requests + d.requests,
      prompt_tokens: t.prompt_tokens + d.prompt_tokens,
      completion_tokens: t.completion_tokens + d.completion_tokens,
      total_tokens: t.total_tokens + d.total_tokens,
    }),
    { requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  );
  const limits = tenantLimits(c.env, tenant);
  return c.json(
    { object: "list" as const, data, totals, limits: { requests_per_minute: limits.rpm, tokens_per_day: limits.tokensPerDay } },
    200,
  );
});
