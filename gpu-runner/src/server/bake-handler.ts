/**
 * POST /internal/v1/bake (core/src/wire/bake.ts): parse, find the model, bake on the runner.
 * Errors are the engine's typed errors, thrown to the app's one error handler (errors.ts).
 */
import type { Context } from "hono";
import { bakeRequestSchema } from "#core/wire/bake";
import type { RunnerBaker } from "../bake/index.js";
import { EngineError, type ModelEngine } from "../engine/index.js";

export interface BakeHandlerDeps {
  baker: RunnerBaker;
  engineById(id: string): ModelEngine | undefined;
  /** Models loaded and not draining. */
  accepting(): boolean;
  loadedIds(): string[];
}

export function bakeHandler(deps: BakeHandlerDeps) {
  return async function handleBake(c: Context): Promise<Response> {
    let json: unknown;
    try {
      json = JSON.parse(await c.req.text());
    } catch (e) {
      throw new EngineError("invalid_request_error", `body is not JSON: ${(e as Error).message}`);
    }
    const parsed = bakeRequestSchema.safeParse(json);
    if (!parsed.success) {
      throw new EngineError("invalid_request_error", parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; "));
    }
    if (!deps.accepting()) throw new EngineError("service_unavailable_error", "the runner is not accepting work (starting or shutting down)", 2);
    const engine = deps.engineById(parsed.data.model);
    if (!engine) throw new EngineError("model_not_found", `model ${parsed.data.model} is not loaded here (loaded: ${deps.loadedIds().join(", ")})`);
    return c.json(await deps.baker.bake(engine.model, parsed.data));
  };
}
