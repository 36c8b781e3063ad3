import { z } from "@hono/zod-openapi";
import { errorResponses } from "../errors/error-schema.js";
import { runnerStatuses } from "../runners/runner-status.js";
import { adminRouteGroup, jsonResponse, listOf, newRouter } from "./router.js";

const RunnerStatusSchema = z
  .object({
    url: z.string().openapi({ example: "http://127.0.0.1:8788" }),
    healthy: z.boolean().openapi({ description: "Routable now (not in a back-off after failures); per edge isolate" }),
    status: z.enum(["ok", "starting", "draining", "stalled", "unreachable"]).openapi({ description: "The runner's /healthz status from a probe made for this call (stalled: an engine has work but completed no model step within the runner's stall limit)" }),
    pid: z.number().int().nullable().openapi({ description: "The runner's process id (a restarted runner has a new one)" }),
    load: z.number().int().nullable().openapi({ description: "Requests queued + running on the runner" }),
    models: z.array(z.string()),
    consecutive_failures: z.number().int(),
    down_until: z.string().nullable().openapi({ description: "End of the current back-off (ISO time), null when healthy" }),
    last_error: z.string().nullable().openapi({ description: "The last failure seen (operator detail: may name paths)" }),
    last_ok_at: z.string().nullable(),
    probe_ms: z.number().int(),
  })
  .openapi("RunnerStatus");

const listRunnersRoute = adminRouteGroup("admin").get("/v1/admin/runners", {
  summary: "Runners: probed now, with health, models, load, last error and last success (admin)",
  responses: {
    200: jsonResponse("Every runner of RUNNER_URLS", listOf(RunnerStatusSchema)),
    ...errorResponses(401, 403),
  },
});

export const runnerRoutes = newRouter().openapi(listRunnersRoute, async (c) =>
  c.json({ object: "list" as const, data: await runnerStatuses(c.env) }, 200),
);
