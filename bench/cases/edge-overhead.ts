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
 * worker's floor (`GET /healthz`: wrangler dev's proxy and the isolate, no D1) and one local D1
 * round trip (`GET /v1/usage`, a cached key and one query, minus the floor). The hot path of a
 * completion is one D1 round trip before the runner (usage is written after the response).
 */
export const edgeOverhead: BenchCase = {
  id: "8",
  title: "edge overhead (wrangler dev + local D1 vs direct to runner)",
  async run(ctx) {
    const secret = "bench-runner-secret";
    const adminToken = "bench-admin-token";
    const apiKey = "le_bench_" + "b".repeat(32);
    const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-bench-edge-"));
    const runner = await startRunner({ secret, models: "loraedge-tiny" });
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
        const viaEdge = async () => {
          const t0 = performance.now();
          const res = await fetch(`${edge.url}/v1/completions`, {
            method: "POST",
            headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
            body,
          });
          if (!res.ok) throw new Error(`edge completion failed: ${res.status} ${await res.text()}`);
          await res.arrayBuffer();
          return performance.now() - t0;
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
        for (let i = 0; i < n; i++) {
          if (i % 2 === 0) {
            edgeMs.push(await viaEdge());
            directMs.push(await direct());
          } else {
            directMs.push(await direct());
            edgeMs.push(await viaEdge());
          }
          floorMs.push(await timedGet("/healthz"));
          oneQueryMs.push(await timedGet("/v1/usage"));
        }
        const p = (v: number[], q: number) => percentile(v, q);
        const addedP50 = p(edgeMs, 0.5) - p(directMs, 0.5);
        const addedP99 = p(edgeMs, 0.99) - p(directMs, 0.99);
        const floorP50 = p(floorMs, 0.5);
        const d1P50 = p(oneQueryMs, 0.5) - floorP50;
        const why =
          `on this machine the worker's floor (GET /healthz through wrangler dev) is ${floorP50.toFixed(1)} ms p50 ` +
          `and one local D1 query ${d1P50.toFixed(1)} ms p50; a warm completion makes one D1 round trip before the runner`;
        return {
          figures: [
            figure("added p50", addedP50, "ms", { goal: { op: "<=", target: 5 }, ...(addedP50 > 5 ? { note: why } : {}) }),
            figure("added p99", addedP99, "ms", { goal: { op: "<=", target: 15 }, ...(addedP99 > 15 ? { note: why } : {}) }),
            figure("direct p50", p(directMs, 0.5), "ms"),
            figure("through the edge p50", p(edgeMs, 0.5), "ms"),
            figure("worker floor p50 (GET /healthz)", floorP50, "ms"),
            figure("one local D1 query p50 (GET /v1/usage − floor)", d1P50, "ms"),
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
