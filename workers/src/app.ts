import { OpenAPIHono } from "@hono/zod-openapi";
import { timing } from "hono/timing";
import type { AppEnv } from "./app-env.js";
import { createDb } from "./db/client.js";
import { notFound } from "./errors/api-error.js";
import { errorResponse } from "./errors/on-error.js";
import { validationHook } from "./errors/validation-hook.js";
import { edgeVars } from "./limits/config.js";
import { requestId } from "./logging/request-id.js";
import { DOCS_HTML } from "./openapi/docs-page.js";
import { registerOpenApi } from "./openapi/document.js";
import { adapterRoutes } from "./routes/adapters.js";
import { completionRoutes } from "./routes/completions.js";
import { compositionRoutes } from "./routes/compositions.js";
import { internalRoutes } from "./routes/internal.js";
import { keyRoutes } from "./routes/keys.js";
import { modelRoutes } from "./routes/models.js";
import { runnerRoutes } from "./routes/runners.js";
import { tenantRoutes } from "./routes/tenants.js";
import { usageRoutes } from "./routes/usage.js";

/** Builds the whole edge API. */
export function createApp(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  // `Server-Timing` on every answer: `total`, and the stages that wait (auth, plan, gate, runner).
  app.use(timing({ totalDescription: "" }));
  app.use(requestId());
  app.use(async function attachDb(c, next) {
    c.set("db", createDb(c.env.DB));
    await next();
  });
  // A bad var fails every request with a 500 naming it (never a silent default).
  app.use(async function checkEdgeVars(c, next) {
    edgeVars(c.env);
    await next();
  });
  app.onError(errorResponse);
  app.notFound((c) => errorResponse(notFound(`no route for ${c.req.method} ${c.req.path}`), c));

  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.route("/", tenantRoutes);
  app.route("/", keyRoutes);
  app.route("/", adapterRoutes);
  app.route("/", compositionRoutes);
  app.route("/", modelRoutes);
  app.route("/", completionRoutes);
  app.route("/", usageRoutes);
  app.route("/", internalRoutes);
  app.route("/", runnerRoutes);
  registerOpenApi(app);
  app.get("/docs", (c) => c.html(DOCS_HTML));
  return app;
}
