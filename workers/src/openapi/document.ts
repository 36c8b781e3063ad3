import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../app-env.js";

export const OPENAPI_INFO = {
  title: "loraedge edge API",
  version: "0.1.0",
  description:
    "Tenants and API keys, a LoRA adapter registry (PEFT uploads validated against each base model's manifest), saved compositions and baking, and OpenAI-compatible completions through weighted adapter mixes, routed to GPU runners.",
};

/** Registers the security schemes and serves the generated document at /openapi.json. */
export function registerOpenApi(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "apiKey", {
    type: "http",
    scheme: "bearer",
    description: "A tenant API key (`le_…`): `Authorization: Bearer <key>`",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "adminToken", {
    type: "http",
    scheme: "bearer",
    description: "The ADMIN_TOKEN secret",
  });
  app.doc31("/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: OPENAPI_INFO,
    servers: [{ url: new URL(c.req.url).origin }],
  }));
}
