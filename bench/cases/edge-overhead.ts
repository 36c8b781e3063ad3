import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { signRequest } from "#core/wire/hmac";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import { startEdge, startRunner } from "../../scripts/lib/stack.js";
import type { BenchCase } from "../lib/case.js";
import { figure } from "../lib/report.js";
import { percentile } from "../lib/stats.js";

/**
 * Case 8: the same completion through the worker (wrangler dev: auth, D1 limits and usage,
 * routing, HMAC signing, SSE-free JSON pass-through) and straight to the runner (signed), the
 * two alternating request by request. The runner serves the default tiny model with max_tokens 1,
 * so the difference is the edge's own cost. Goals (issue #12): added p50 ≤ 5 ms, p99 ≤ 15 ms.
 *
 * Beside it, in the same alternation, what the edge's cost is made of on this machine: the
 * worker's floor (`GET /healthz`: wrangler dev's ProxyWorker, the user worker's isolate and its
 * one log line, no D1) and one local D1 round trip (`GET /v1/usage`, a cached key and one query,
 * minus the floor). From each completion's `Server-Timing` (workers/src/app.ts): the gate (the
 * one D1 round trip before the runner; usage is written after the response) and the runner call
 * as the worker saw it. What is left of each completion's added time once the floor (the
 * following /healthz) and its gate are taken out is the edge's own code: routing, validation,
 * signing, the runner hop, JSON in and out (goal ≤ 5 ms, the issue's ≤ 5 ms for what this repo
 * controls; the floor is wrangler dev's).
 *
 * The runner runs single-threaded (RUNNER_THREADS=1): onnxruntime's pool threads otherwise spin
 * on a core for ≈ 10 ms after every run (runner CPU per request, measured: 3 ms back to back,
 * 15 ms with 30 ms between requests), which on a 2-core machine is taken from wrangler and
 * workerd exactly while they handle the answer. Both sides of the comparison use that runner.
 */
export const edgeOverhead: BenchCase = {
  id: "8",
  title: "edge overhead (wrangler dev + local D1 vs direct to runner)",
  async run(ctx) {
    const secret = "bench-runner-secret";
    const adminToken = "bench-admin-token";
    const apiKey = "le_bench_" + "b".repeat(32);
    const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-bench-edge-"));
    const runner = await startRunner({ secret, models: "loraedge-tiny", env: { RUNNER_THREADS: "1" } });
    try {
      const edge = await startEdge({
        runnerUrls: [runner.url],
        runnerSecret: secret,
        adminToken,
        persistDir,
        // Limits out of the way: this measures overhead, not rate limiting.
        vars: { RATE_LIMIT_RPM: "1000000", TOKENS_PER_DAY: "1000000000" },
      });
      try {
        const seeded = await fetch(`${edge.url}/v1/tenants/bench`, {
          method: "PUT",
          headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
          body: JSON.stringify({ api_key: apiKey }),
        });
        if (!seeded.ok) throw new Error(`seeding failed: ${seeded.status} ${await seeded.text()}`);
        const body = JSON.stringify({ model: "loraedge-tiny", prompt: "hello", max_tokens: 1, temperature: 0, ignore_eos: true });
        /** The completion's time, and the worker's own Server-Timing stages of it. */
        const viaEdge = async () => {
          const t0 = performance.now();
          const res = await fetch(`${edge.url}/v1/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
            body,
          });
          if (!res.ok) throw new Error(`edge completion failed: ${res.status} ${await res.text()}`);
          await res.arrayBuffer();
          const ms = performance.now() - t0;
          const stages = serverTiming(res.headers.get("server-timing"));
          if (stages.gate === undefined || stages.runner === undefined) throw new Error("the edge's answer has no Server-Timing gate/runner");
          return { ms, gate: stages.gate, runner: stages.runner };
        };
        const direct = async () => {
          const t0 = performance.now();
          const headers = await signRequest(secret, { method: "POST", pathAndQuery: RUNNER_PATHS.completions, body });
          const res = await fetch(`${runner.url}${RUNNER_PATHS.completions}`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json" },
            body,
          });
          if (!res.ok) throw new Error(`runner completion failed: ${res.status} ${await res.text()}`);
          await res.arrayBuffer();
          return performance.now() - t0;
        };
        const timedGet = async (route: string) => {
          const t0 = performance.now();
          const res = await fetch(`${edge.url}${route}`, { headers: { authorization: `Bearer ${apiKey}` } });
          if (!res.ok) throw new Error(`GET ${route} failed: ${res.status} ${await res.text()}`);
          await res.arrayBuffer();
          return performance.now() - t0;
        };
        const n = ctx.quick ? 20 : 200;
        ctx.progress(`${n} completions each way, alternating (with the worker's floor and one D1 query)`);
        for (let i = 0; i < 10; i++) await Promise.all([viaEdge(), direct()]); // warm-up
        const edgeMs: number[] = [];
        const directMs: number[] = [];
        const floorMs: number[] = [];
        const oneQueryMs: number[] = [];
        const gateMs: number[] = [];
        const runnerCallMs: number[] = [];
        /** Per round: the completion's added time less its floor (the /healthz after it) and its gate. */
        const ownMs: number[] = [];
        for (let i = 0; i < n; i++) {
          let edge: Awaited<ReturnType<typeof viaEdge>>;
          let directOne: number;
          if (i % 2 === 0) {
            edge = await viaEdge();
            directOne = await direct();
          } else {
            directOne = await direct();
            edge = await viaEdge();
          }
          const floor = await timedGet("/healthz");
          edgeMs.push(edge.ms);
          directMs.push(directOne);
          gateMs.push(edge.gate);
          runnerCallMs.push(edge.runner);
          floorMs.push(floor);
          ownMs.push(edge.ms - directOne - floor - edge.gate);
          oneQueryMs.push(await timedGet("/v1/usage"));
        }
        const p = (v: number[], q: number) => percentile(v, q);
        const addedP50 = p(edgeMs, 0.5) - p(directMs, 0.5);
        const addedP99 = p(edgeMs, 0.99) - p(directMs, 0.99);
        const floorP50 = p(floorMs, 0.5);
        const d1P50 = p(oneQueryMs, 0.5) - floorP50;
        const ownP50 = p(ownMs, 0.5);
        const why =
          `on this machine the worker's floor (GET /healthz through wrangler dev) is ${floorP50.toFixed(1)} ms p50 ` +
          `and the completion's one D1 round trip (its gate) ${p(gateMs, 0.5).toFixed(1)} ms p50; ` +
          `the edge's own code is ${ownP50.toFixed(1)} ms p50 of the rest`;
        return {
          figures: [
            figure("added p50", addedP50, "ms", { goal: { op: "<=", target: 5 }, ...(addedP50 > 5 ? { note: why } : {}) }),
            figure("added p99", addedP99, "ms", { goal: { op: "<=", target: 15 }, ...(addedP99 > 15 ? { note: why } : {}) }),
            figure("direct p50", p(directMs, 0.5), "ms"),
            figure("through the edge p50", p(edgeMs, 0.5), "ms"),
            figure("worker floor p50 (GET /healthz)", floorP50, "ms"),
            figure("one local D1 query p50 (GET /v1/usage − floor)", d1P50, "ms"),
            figure("gate p50 (the completion's D1 round trip, Server-Timing)", p(gateMs, 0.5), "ms"),
            figure("runner call as the worker saw it p50 (Server-Timing)", p(runnerCallMs, 0.5), "ms"),
            figure("edge's own code p50 (added − floor − gate, per round)", ownP50, "ms", { goal: { op: "<=", target: 5 } }),
          ],
        };
      } finally {
        await edge.stop();
      }
    } finally {
      await runner.stop();
      rmSync(persistDir, { recursive: true, force: true });
    }
  },
};

/** `name;dur=12.0, other;dur=3` → { name: 12, other: 3 } (entries without a duration are left out). */
function serverTiming(header: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (header ?? "").split(",")) {
    const [name, ...params] = entry.trim().split(";");
    const dur = params.map((x) => /^\s*dur=([\d.]+)\s*$/.exec(x)?.[1]).find((x) => x !== undefined);
    if (name && dur !== undefined) out[name] = Number(dur);
  }
  return out;
}
