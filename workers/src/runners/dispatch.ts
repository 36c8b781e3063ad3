import type { BakeRequest } from "#core/wire/bake";
import { LOAD_HEADER, RUNNER_PATHS, type GenerateRequestInput } from "#core/wire/runner-api";
import { ApiError, serviceUnavailable, tooManyRequests } from "../errors/api-error.js";
import { log } from "../logging/log.js";
import { boundedLoadOrder } from "./bounded-load.js";
import { awaitFirstEvent } from "./first-event.js";
import { runnerHealth, type HealthTracker } from "./health.js";
import { runnerLoads, type LoadTracker } from "./load.js";
import { rendezvousRank } from "./rendezvous.js";
import { readRunnerError } from "./runner-error.js";
import { signedFetch } from "./signed-fetch.js";

export interface DispatchResult {
  runner: string;
  /** The runner's successful response (status < 400); its body is not consumed yet (for a stream: replayed). */
  response: Response;
  /** Runners tried before this one, with why they were skipped. */
  failovers: { runner: string; error: string }[];
}

export interface DispatchOptions {
  secret: string;
  /** Candidate runners (serving the model). */
  runners: readonly string[];
  /** Rendezvous key (see mixRoutingKey). */
  routingKey: string;
  /** The runner route (default: completions). */
  path?: string;
  body: GenerateRequestInput | BakeRequest;
  requestId?: string;
  health?: HealthTracker;
  loads?: LoadTracker;
  /** Time to wait for one runner's response headers (a unary answer's headers come with its body). Default 60 s. */
  timeoutMs?: number;
  /**
   * For `stream: true`: after the headers, the longest silence (no byte: events or keep-alive
   * comments) before the first event; longer → fail over. Default: no limit beyond `timeoutMs`.
   */
  streamIdleMs?: number;
}

/**
 * Sends a completion request to the runner that ranks first for the routing key among the
 * healthy ones, unless its last reported load is above the bound (bounded-load.ts). What a runner's answer means follows its error type's fault class
 * (core/src/wire/errors.ts, read by runner-error.ts):
 *   - connection error, timeout, or a "runner" fault (5xx: crashed step, draining…): the runner
 *     is marked down for a back-off and the next one is tried;
 *   - a "busy" fault (429 queue full, model not loaded there): the next one is tried, the runner
 *     is not marked down;
 *   - a "request" fault (bad input) or an "upstream" fault (the adapter fetch failed): thrown as
 *     the client's ApiError at once; the runner stays healthy (another would fail the same way);
 *   - for `stream: true`, a 200 whose stream ends, breaks or sends no byte for `streamIdleMs`
 *     before its first complete data event: a runner fault.
 * Hang detection: no headers within `timeoutMs` is a timeout (fail over, mark down).
 * So fail-over always happens before the first streamed token. All candidates failing → 503
 * (or 429 with Retry-After when all were busy). Messages name no runner, path or internal id;
 * the details go to the log.
 */
export async function dispatchCompletion(opts: DispatchOptions): Promise<DispatchResult> {
  return dispatchToRunner(opts);
}

/** The same choice, fail-over and error handling for any signed POST to a runner (completions, bake). */
export async function dispatchToRunner(opts: DispatchOptions): Promise<DispatchResult> {
  const health = opts.health ?? runnerHealth;
  if (opts.runners.length === 0) throw serviceUnavailable("no runner serves this model", 5);
  const loads = opts.loads ?? runnerLoads;
  // Rendezvous rank (affinity), first choices above the load bound moved back, healthy runners first.
  const order = health.order(boundedLoadOrder(rendezvousRank(opts.routingKey, opts.runners), (r) => loads.loadOf(r)));
  const body = JSON.stringify(opts.body);
  const failovers: { runner: string; error: string }[] = [];
  let busy = 0;
  let retryAfter = 1;
  for (const runner of order) {
    let error: string;
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error("timeout waiting for the runner's response")),
      opts.timeoutMs ?? 60_000,
    );
    try {
      const response = await signedFetch(opts.secret, runner, opts.path ?? RUNNER_PATHS.completions, {
        method: "POST",
        body,
        headers: opts.requestId ? { "x-request-id": opts.requestId } : {},
        signal: controller.signal,
      });
      clearTimeout(timer); // headers arrived: from here on, silence is what counts (streamIdleMs)
      loads.record(runner, response.headers.get(LOAD_HEADER));
      if (response.status >= 400) {
        const answer = readRunnerError(response.status, await response.text().catch(() => ""), response.headers.get("retry-after"));
        if (answer.fault === "request" || answer.fault === "upstream") {
          health.markSuccess(runner);
          if (answer.fault === "upstream") {
            log("warn", "runner dependency failed", { request_id: opts.requestId, runner, status: answer.status, error: answer.detail });
          }
          throw answer.apiError;
        }
        if (answer.fault === "busy") {
          busy++;
          retryAfter = Math.max(retryAfter, Number(response.headers.get("retry-after")) || 1);
          failovers.push({ runner, error: `busy (${answer.status}): ${answer.detail}` });
          continue;
        }
        error = `status ${answer.status}: ${answer.detail.slice(0, 300)}`;
      } else if ("stream" in opts.body && opts.body.stream && response.ok && response.body) {
        const replay = await awaitFirstEvent(response.body, { idleTimeoutMs: opts.streamIdleMs });
        if (replay) {
          health.markSuccess(runner);
          return { runner, response: new Response(replay, { status: response.status, headers: response.headers }), failovers };
        }
        error = "stream ended, broke or went silent before its first event";
      } else {
        health.markSuccess(runner);
        return { runner, response, failovers };
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    } finally {
      clearTimeout(timer);
    }
    health.markFailure(runner, error);
    failovers.push({ runner, error });
    log("warn", "runner failed, failing over", { request_id: opts.requestId, runner, error });
  }
  if (busy === order.length) throw tooManyRequests(`all ${order.length} runner(s) are busy`, retryAfter);
  log("error", "no runner could serve the request", { request_id: opts.requestId, failovers });
  throw serviceUnavailable(`no runner could serve the request (${order.length} tried); retry later`, 5);
}
