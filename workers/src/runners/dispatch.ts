import { RUNNER_PATHS, type GenerateRequestInput } from "../../../core/src/wire/runner-api.js";
import { ApiError, serviceUnavailable } from "../errors/api-error.js";
import { log } from "../logging/log.js";
import { runnerHealth, type HealthTracker } from "./health.js";
import { rendezvousRank } from "./rendezvous.js";
import { signedFetch } from "./signed-fetch.js";

export interface DispatchResult {
  runner: string;
  /** The runner's response (status < 500); its body is not consumed yet. */
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
  body: GenerateRequestInput;
  requestId?: string;
  health?: HealthTracker;
  /** Time to wait for response headers from one runner. */
  timeoutMs?: number;
}

/**
 * Sends a completion request to the runner that ranks first for the routing key among the
 * healthy ones, failing over to the next on a connection error, a timeout before headers, or
 * a 5xx status. Once a runner answered with < 500, its response is returned as is (a stream
 * has not produced a token before its headers, so fail-over always happens before the first
 * streamed token). All candidates failing → 503.
 */
export async function dispatchCompletion(opts: DispatchOptions): Promise<DispatchResult> {
  const health = opts.health ?? runnerHealth;
  if (opts.runners.length === 0) throw serviceUnavailable("no runner serves this model", 5);
  const order = health.order(rendezvousRank(opts.routingKey, opts.runners));
  const body = JSON.stringify(opts.body);
  const failovers: { runner: string; error: string }[] = [];
  for (const runner of order) {
    let error: string;
    try {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new Error("timeout waiting for response headers")), opts.timeoutMs ?? 60_000);
      let response: Response;
      try {
        response = await signedFetch(opts.secret, runner, RUNNER_PATHS.completions, {
          method: "POST",
          body,
          headers: opts.requestId ? { "x-request-id": opts.requestId } : {},
          signal: controller.signal,
        });
      } finally {
        clearTimeout(timer);
      }
      if (response.status < 500) {
        health.markSuccess(runner);
        return { runner, response, failovers };
      }
      error = `status ${response.status}: ${(await response.text().catch(() => "")).slice(0, 300)}`;
    } catch (e) {
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    health.markFailure(runner, error);
    failovers.push({ runner, error });
    log("warn", "runner failed, failing over", { request_id: opts.requestId, runner, error });
  }
  throw new ApiError(
    503,
    "service_unavailable_error",
    `all ${order.length} runner(s) failed (last error: ${failovers[failovers.length - 1]?.error ?? "none"})`,
    { "retry-after": "5" },
  );
}
