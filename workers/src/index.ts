import { normalizeAdapterRefPath } from "./adapters/ref-path.js";
import { createApp } from "./app.js";
import type { Env } from "./env.js";
import { maintenanceTask, runScheduledTasks, type ScheduledTask } from "./maintenance/scheduled.js";

const app = createApp();

/** Everything the Cron Trigger runs (wrangler.toml [triggers]); add a task here rather than a second handler. */
const scheduledTasks: ScheduledTask[] = [maintenanceTask];

/** The worker entry: the Hono app, after accepting `owner/name@version` paths with a literal slash. */
export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return app.fetch(normalizeAdapterRefPath(request), env, ctx);
  },
  /** Cron Trigger: every scheduled task, at the trigger's scheduled time. */
  scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): void {
    ctx.waitUntil(runScheduledTasks(env, scheduledTasks, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
