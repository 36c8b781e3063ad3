/**
 * The runner's HTTP service (Hono): signed internal API for the edge, plus unsigned
 * /healthz and /metrics. Paths come from the wire contract (core/src/wire/runner-api.ts).
 */
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import {
  LOAD_HEADER,
  PROMPT_TOKENS_HEADER,
  generateRequestSchema,
  RUNNER_PATHS,
  type GenerateRequest,
  type EngineHealth,
  type Health,
  type ModelList,
} from "#core/wire/runner-api";
import { RUNNER_BAKE_PATH } from "#core/wire/bake";
import type { AdapterCache } from "../adapters/index.js";
import type { RunnerBaker } from "../bake/index.js";
import {
  AbortedError,
  EngineError,
  isEngineError,
  type GenerationResult,
  type Logger,
  type ModelEngine,
  type TokenEvent,
} from "../engine/index.js";
import { DEFAULT_STALL_LIMIT_MS, silentLogger } from "../engine/index.js";
import { completionBody, finalChunk, textChunk, tokenChunk, type CompletionMeta } from "./completion-body.js";
import { bakeHandler } from "./bake-handler.js";
import { errorBody, errorResponse } from "./errors.js";
import { hmacAuth } from "./hmac-auth.js";
import { RunnerMetrics } from "./metrics.js";

export interface RunnerAppDeps {
  /** The served models; may be filled after the server started listening (see `state.ready`). */
  engines: ModelEngine[];
  adapters: AdapterCache | null;
  secret: string;
  replayWindowS: number;
  /** Silence after which an open stream writes `: keep-alive` (0: never). Default 5000. */
  sseKeepAliveMs?: number;
  /**
   * An engine holding work with no model step returned for this long is stalled (engine/liveness.ts):
   * its waiting streams get no more keep-alives (the edge's idle timeout ends them), /healthz
   * answers 503 "stalled" and its new completions 503. 0: never. Default DEFAULT_STALL_LIMIT_MS.
   */
  stallLimitMs?: number;
  /** Serves POST /internal/v1/bake when set. */
  baker?: RunnerBaker;
  log?: Logger;
}

/** Per-request variables: the served model once known (the completions counter's label). */
interface RunnerAppEnv {
  Variables: { model?: string };
}

/**
 * The completion request body, validated against the wire contract.
 * Throws invalid_request_error naming every bad field.
 */
function parseGenerateRequest(text: string): GenerateRequest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new EngineError("invalid_request_error", `body is not JSON: ${(e as Error).message}`);
  }
  const parsed = generateRequestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ");
    throw new EngineError("invalid_request_error", issues);
  }
  return parsed.data;
}

/** Mutable service state shared with main.ts (draining on shutdown). */
export interface RunnerState {
  /** Models are loaded (set by the caller once `engines` is filled). */
  ready: boolean;
  draining: boolean;
  /** Open SSE streams (shutdown waits for them). */
  openStreams: number;
  /** Internal requests whose handler has not returned yet (shutdown waits for them: a bake's answer). */
  openRequests: number;
}

/** The SSE comment a waiting stream writes (clients ignore comments). */
export const KEEP_ALIVE_COMMENT = ": keep-alive\n\n";

export function createRunnerApp(deps: RunnerAppDeps) {
  const log = deps.log ?? silentLogger;
  const keepAliveMs = deps.sseKeepAliveMs ?? 5_000;
  const stallLimitMs = deps.stallLimitMs ?? DEFAULT_STALL_LIMIT_MS;
  const metrics = new RunnerMetrics();
  const state: RunnerState = { ready: false, draining: false, openStreams: 0, openRequests: 0 };
  let engines = new Map<string, ModelEngine>();
  const engineById = (id: string) => {
    if (engines.size !== deps.engines.length) engines = new Map(deps.engines.map((e) => [e.id, e]));
    return engines.get(id);
  };
  const app = new Hono<RunnerAppEnv>();

  app.onError((e, c) => {
    const res = errorResponse(e, log, c.req.path);
    if (res.status >= 500) log("warn", "request failed", { path: c.req.path, status: res.status, error: e.message });
    return res;
  });
  app.notFound((c) => c.json(errorBody("not_found_error", `no route ${c.req.method} ${c.req.path}`), 404));

  /** Requests queued + running over all models (reported as LOAD_HEADER and in /healthz). */
  const load = () => deps.engines.reduce((n, e) => n + e.scheduler.inFlight, 0);

  /** Each loaded engine's liveness, judged against the stall limit. */
  const engineHealth = (): EngineHealth[] =>
    deps.engines.map((e) => {
      const l = e.scheduler.liveness(stallLimitMs);
      const ms = (v: number) => Math.round(v);
      return { model: e.id, busy: l.busy, last_step_age_ms: l.lastStepAgeMs === null ? null : ms(l.lastStepAgeMs), no_progress_ms: ms(l.noProgressMs), stalled: l.stalled };
    });

  app.get(RUNNER_PATHS.health, (c) => {
    const engines = state.ready ? engineHealth() : [];
    const stalled = engines.some((e) => e.stalled);
    const status: Health["status"] = state.draining ? "draining" : !state.ready ? "starting" : stalled ? "stalled" : "ok";
    const body: Health = {
      status,
      ready: status === "ok",
      models: state.ready ? deps.engines.map((e) => e.id) : [],
      pid: process.pid,
      load: load(),
      ...(state.ready ? { engines } : {}),
    };
    return c.json(body, status === "ok" ? 200 : 503);
  });

  app.get(RUNNER_PATHS.metrics, (c) => {
    c.header("content-type", "text/plain; version=0.0.4; charset=utf-8");
    return c.body(metrics.render(deps.engines, deps.adapters));
  });

  app.use("/internal/*", async function countOpen(_c, next) {
    state.openRequests++;
    try {
      await next();
    } finally {
      state.openRequests--;
    }
  });
  app.use("/internal/*", hmacAuth(deps.secret, deps.replayWindowS));

  app.get(RUNNER_PATHS.models, (c) => {
    const body: ModelList = {
      object: "list",
      data: deps.engines.map((e) => ({ id: e.id, object: "model", owned_by: "loraedge", manifest: e.model.manifest })),
    };
    return c.json(body);
  });

  app.get(RUNNER_PATHS.adapters, (c) => {
    if (!deps.adapters) return c.json({ object: "list", data: [], stats: null });
    return c.json({ object: "list", data: deps.adapters.list(), stats: deps.adapters.stats() });
  });

  app.delete(`${RUNNER_PATHS.adapters}/:id`, (c) => {
    const id = c.req.param("id");
    const outcome = deps.adapters?.evict(id) ?? { evicted: [], pinned: [] };
    if (outcome.evicted.length === 0 && outcome.pinned.length === 0) {
      return c.json(errorBody("not_found_error", `adapter ${id} is not in the cache`), 404);
    }
    if (outcome.evicted.length === 0) {
      return c.json(errorBody("conflict_error", `adapter ${id} is in use by running requests; retry when they finish`), 409);
    }
    return c.json(outcome);
  });

  if (deps.baker) {
    app.post(
      RUNNER_BAKE_PATH,
      bakeHandler({
        baker: deps.baker,
        engineById,
        accepting: () => state.ready && !state.draining,
        loadedIds: () => deps.engines.map((e) => e.id),
      }),
    );
  }

  // Counts every completion answer (errors included: they reach here through onError).
  app.use(RUNNER_PATHS.completions, async function countCompletion(c, next) {
    await next();
    metrics.countRequest({ model: c.get("model") ?? "unknown", status: String(c.res.status) });
  });

  app.post(RUNNER_PATHS.completions, async (c) => {
    const arrived = performance.now();
    const signal = c.req.raw.signal;
    const request = parseGenerateRequest(await c.req.text());
    if (!state.ready) throw new EngineError("service_unavailable_error", "the runner is still loading its models", 2);
    const engine = engineById(request.model);
    if (!engine) {
      throw new EngineError("model_not_found", `model ${request.model} is not loaded here (loaded: ${deps.engines.map((e) => e.id).join(", ")})`);
    }
    c.set("model", engine.id);
    if (state.draining) throw new EngineError("service_unavailable_error", "the runner is shutting down", 5);
    const liveness = engine.scheduler.liveness(stallLimitMs);
    if (liveness.stalled) {
      // A hung step: this request would wait behind it forever. The edge fails over on a 503.
      throw new EngineError(
        "service_unavailable_error",
        `model ${engine.id} has had work for ${Math.round(liveness.noProgressMs / 1000)} s without completing a step (stall limit ${stallLimitMs / 1000} s)`,
        5,
      );
    }
    const meta: CompletionMeta = {
      id: `cmpl-${request.request_id ?? randomUUID()}`,
      created: Math.floor(Date.now() / 1000),
      model: engine.id,
    };
    const observe = (outcome: string, merged: boolean, result?: GenerationResult, mixKey?: string) => {
      const seconds = (performance.now() - arrived) / 1000;
      metrics.requestSeconds.observe(seconds, {
        model: engine.id,
        mode: request.stream ? "stream" : "unary",
        merged: String(merged),
        outcome,
      });
      log("info", "completion", {
        requestId: request.request_id ?? null,
        model: engine.id,
        mix: mixKey ?? null,
        adapters: request.adapters.length,
        merged,
        stream: request.stream,
        outcome,
        promptTokens: result?.promptTokens ?? null,
        completionTokens: result?.completionTokens ?? null,
        finishReason: result?.finishReason ?? null,
        ms: Math.round(seconds * 1000),
      });
    };
    /** The metrics outcome of a failed request: "aborted", or its status. */
    const failed = (e: unknown, merged: boolean): never => {
      observe(e instanceof AbortedError ? "aborted" : String(isEngineError(e) ? e.status : 500), merged);
      throw e;
    };
    let firstToken = true;
    const queue: TokenEvent[] = [];
    let notify: (() => void) | null = null;
    const onToken = (event: TokenEvent) => {
      if (firstToken) {
        firstToken = false;
        metrics.firstTokenSeconds.observe((performance.now() - arrived) / 1000, { model: engine.id });
      }
      if (request.stream) {
        queue.push(event);
        notify?.();
        notify = null;
      }
    };

    const started = await engine.start(request, { signal, onToken }).catch((e: unknown) => failed(e, false));
    c.header(LOAD_HEADER, String(load()));

    if (!request.stream) {
      const result = await started.result.catch((e: unknown) => failed(e, started.merged));
      observe("ok", started.merged, result, started.mixKey);
      c.header(LOAD_HEADER, String(load())); // at answer time
      return c.json(completionBody(meta, result));
    }

    state.openStreams++;
    c.header(PROMPT_TOKENS_HEADER, String(started.promptTokens));
    return streamSSE(c, async (stream) => {
      let done = false;
      let outcome: { ok: true; result: Awaited<typeof started.result> } | { ok: false; error: unknown } | null = null;
      started.result.then(
        (result) => (outcome = { ok: true, result }),
        (error: unknown) => (outcome = { ok: false, error }),
      ).finally(() => {
        done = true;
        notify?.();
        notify = null;
      });
      let streamed = "";
      /** Keep-alives were withheld from this stream (its engine stalled): logged once. */
      let silenced = false;
      try {
        if (request.echo) {
          const promptText = started.promptText;
          await stream.writeSSE({ data: JSON.stringify(textChunk(meta, promptText)) });
          streamed += promptText;
        }
        for (;;) {
          while (queue.length) {
            const event = queue.shift()!;
            await stream.writeSSE({ data: JSON.stringify(tokenChunk(meta, event, streamed.length)) });
            streamed += event.text;
          }
          if (done) break;
          // Wait for the next token; while none comes (queued, long prefill), a comment every
          // keepAliveMs tells the edge this runner is alive (its idle timeout counts any bytes) —
          // but only while the engine completes steps: a stalled engine (a hung step) sends
          // nothing, so the edge's idle timeout ends the stream and marks this runner suspect.
          let timer: ReturnType<typeof setTimeout> | undefined;
          const woken = await new Promise<boolean>((resolve) => {
            notify = () => resolve(true);
            if (keepAliveMs > 0) timer = setTimeout(() => resolve(false), keepAliveMs);
          });
          clearTimeout(timer);
          if (!woken) {
            notify = null;
            // The client left: nothing more to write. Its row leaves at the next token boundary, which
            // a stalled engine may never reach; this stream does not wait for it.
            if (signal.aborted) {
              observe("aborted", started.merged);
              return;
            }
            const live = engine.scheduler.liveness(stallLimitMs);
            if (!live.stalled) await stream.write(KEEP_ALIVE_COMMENT);
            else if (!silenced) {
              silenced = true;
              log("warn", "engine stalled: keep-alives withheld from a waiting stream", {
                requestId: request.request_id ?? null,
                model: engine.id,
                noProgressMs: Math.round(live.noProgressMs),
              });
            }
          }
        }
        const final = outcome!;
        if (final.ok) {
          const rest = final.result.text.slice(streamed.length);
          await stream.writeSSE({ data: JSON.stringify(finalChunk(meta, final.result, rest)) });
          await stream.writeSSE({ data: "[DONE]" });
          observe("ok", started.merged, final.result, started.mixKey);
        } else if (final.error instanceof AbortedError) {
          observe("aborted", started.merged);
        } else {
          const e = final.error;
          const body = isEngineError(e) ? errorBody(e.type, e.message) : errorBody("internal_error", String(e));
          await stream.writeSSE({ data: JSON.stringify(body) });
          observe("error", started.merged);
        }
      } finally {
        state.openStreams--;
      }
    });
  });

  return { app, state, metrics };
}
