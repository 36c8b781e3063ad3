import { normalizeAdapterRefPath } from "./adapters/ref-path.js";
import { createApp } from "./app.js";
import type { Env } from "./env.js";

const app = createApp();

/** The worker entry: the Hono app, after accepting `owner/name@version` paths with a literal slash. */
export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Response | Promise<Response> {
    return app.fetch(normalizeAdapterRefPath(request), env, ctx);
  },
} satisfies ExportedHandler<Env>;
