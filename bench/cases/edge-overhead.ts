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
 * so the difference is the edge's own cost.
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
        const n = ctx.quick ? 20 : 200;
        ctx.progress(`${n} completions each way, alternating`);
        for (let i = 0; i < 10; i++) await Promise.all([viaEdge(), direct()]); // warm-up
        const edgeMs: number[] = [];
        const directMs: number[] = [];
        for (let i = 0; i < n; i++) {
          if (i % 2 === 0) {
            edgeMs.push(await viaEdge());
            directMs.push(await direct());
          } else {
            directMs.push(await direct());
            edgeMs.push(await viaEdge());
          }
        }
        const p = (v: number[], q: number) => percentile(v, q);
        return {
          figures: [
            figure("added p50", p(edgeMs, 0.5) - p(directMs, 0.5), "ms"),
            figure("added p99", p(edgeMs, 0.99) - p(directMs, 0.99), "ms"),
            figure("direct p50", p(directMs, 0.5), "ms"),
            figure("through the edge p50", p(edgeMs, 0.5), "ms"),
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
