import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { signRequest } from "#core/wire/hmac";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import { startEdge, startRunner } from "../../scripts/lib/stack.js";
import type { BenchCase } from "../lib/case.js";
import { startMiniflareEdge } from "../lib/miniflare-edge.js";
import { figure } from "../lib/report.js";
import { percentile } from "../lib/stats.js";

/**
 * Case 8: the same completion straight to the runner (signed) and through the edge worker (auth, D1
 * limits and usage, routing, HMAC signing, JSON pass-through) on two local hosts of the same worker:
 * - **Miniflare**: the worker bundled as a deploy bundles it, on bare Miniflare (workerd, local D1/R2,
 *   wrangler.toml's bindings and [assets] routing; bench/lib/miniflare-edge.ts). Goals (issue #12):
 *   added p50 ≤ 5 ms, p99 ≤ 15 ms.
 * - **wrangler dev**: the same worker under `wrangler dev` (scripts/lib/stack.ts), whose dev-proxy
 *   layers (ProxyWorker, inspector relay) exist only in local development; its added figures are
 *   reported beside, without a goal, with its measured floor.
 * The three sides alternate request by request, the order rotating every round. The runner serves
 * the default tiny model with max_tokens 1, so the difference is the edge's own cost.
 *
 * For each edge, in the same rounds: its floor (`GET /healthz`: the host's request path, the
 * worker's isolate and its one log line, no D1), and from each completion's `Server-Timing`
 * (workers/src/app.ts) the gate (the request's slot and tokens taken from the isolate's lease of
 * the tenant's limits: no D1, except the round trip of a request that refills the lease; usage is
 * written after the response, in batches). What is left of each completion's added time once the floor (the following
 * /healthz) and the gate are taken out is the rest of the edge's cost: routing, validation, signing, the
 * runner hop, JSON in and out (reported, no goal: the floor itself holds this worker's middleware
 * and log line, and the gate is this repo's D1 design, so it is a breakdown, not a bound). Beside them, one local D1 query under wrangler dev
 * (`GET /v1/usage` − floor).
 *
 * The runner runs single-threaded (RUNNER_THREADS=1): onnxruntime's pool threads otherwise spin
 * on a core for ≈ 10 ms after every run (runner CPU per request, measured: 3 ms back to back,
 * 15 ms with 30 ms between requests), which on a 2-core machine is taken from wrangler and
 * workerd exactly while they handle the answer. All sides use that runner.
 */
export const edgeOverhead: BenchCase = {
  id: "8",
  title: "edge overhead (Miniflare and wrangler dev, local D1, vs direct to runner)",
  async run(ctx) {
    const secret = "bench-runner-secret";
    const adminToken = "bench-admin-token";
    const apiKey = "le_bench_" + "b".repeat(32);
    const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-bench-edge-"));
    const miniflareDir = mkdtempSync(path.join(tmpdir(), "loraedge-bench-miniflare-"));
    const runner = await startRunner({ secret, models: "loraedge-tiny", env: { RUNNER_THREADS: "1" } });
    const edges: { name: string; url: string; stop(): Promise<void> }[] = [];
    try {
      const edgeOptions = {
        runnerUrls: [runner.url],
        runnerSecret: secret,
        adminToken,
        // The deployed default limits (600 rpm, 1,000,000 tokens a day): the lease's blocks are those a tenant
        // gets, so the share of completions that refill it (a D1 round trip in the gate) is the real one (≈ 3 %).
        vars: {},
      };
      const wrangler = await startEdge({ ...edgeOptions, persistDir });
      edges.push({ name: "wrangler dev", url: wrangler.url, stop: () => wrangler.stop() });
      const miniflare = await startMiniflareEdge({ ...edgeOptions, persistDir: miniflareDir });
      edges.push({ name: "Miniflare", url: miniflare.url, stop: () => miniflare.stop() });
      for (const edge of edges) {
        const seeded = await fetch(`${edge.url}/v1/tenants/bench`, {
          method: "PUT",
          headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
          body: JSON.stringify({ api_key: apiKey }),
        });
        if (!seeded.ok) throw new Error(`seeding ${edge.name} failed: ${seeded.status} ${await seeded.text()}`);
      }
      const body = JSON.stringify({ model: "loraedge-tiny", prompt: "hello", max_tokens: 1, temperature: 0, ignore_eos: true });
      /** The completion's time, and the worker's own Server-Timing stages of it. */
      const viaEdge = async (url: string) => {
        const t0 = performance.now();
        const res = await fetch(`${url}/v1/completions`, {
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
      const timedGet = async (url: string, route: string) => {
        const t0 = performance.now();
        const res = await fetch(`${url}${route}`, { headers: { authorization: `Bearer ${apiKey}` } });
        if (!res.ok) throw new Error(`GET ${route} failed: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
        return performance.now() - t0;
      };
      const n = ctx.quick ? 20 : 200;
      ctx.progress(`${n} completions each way (direct, wrangler dev, Miniflare), alternating, with each edge's floor`);
      for (let i = 0; i < 10; i++) await Promise.all([direct(), ...edges.map((e) => viaEdge(e.url))]); // warm-up
      const directMs: number[] = [];
      const perEdge = edges.map(() => ({ ms: [] as number[], gate: [] as number[], runner: [] as number[], floor: [] as number[] }));
      /** The completion's added time less its floor (the /healthz after it) and its gate, per round. */
      const ownMs = edges.map(() => [] as number[]);
      const oneQueryMs: number[] = [];
      for (let i = 0; i < n; i++) {
        const sides = [-1, 0, 1]; // -1: direct; else an index into edges
        const order = [...sides.slice(i % 3), ...sides.slice(0, i % 3)];
        let directOne = 0;
        const got: Awaited<ReturnType<typeof viaEdge>>[] = [];
        for (const side of order) {
          if (side < 0) directOne = await direct();
          else got[side] = await viaEdge(edges[side]!.url);
        }
        directMs.push(directOne);
        for (const [k, edge] of edges.entries()) {
          const floor = await timedGet(edge.url, "/healthz");
          const one = got[k]!;
          perEdge[k]!.ms.push(one.ms);
          perEdge[k]!.gate.push(one.gate);
          perEdge[k]!.runner.push(one.runner);
          perEdge[k]!.floor.push(floor);
          ownMs[k]!.push(one.ms - directOne - floor - one.gate);
        }
        oneQueryMs.push(await timedGet(edges[0]!.url, "/v1/usage") - perEdge[0]!.floor.at(-1)!);
      }
      const p = (v: number[], q: number) => percentile(v, q);
      const figures = [figure("direct p50", p(directMs, 0.5), "ms")];
      const floorOf = (k: number) => p(perEdge[k]!.floor, 0.5);
      for (const k of [1, 0]) {
        const m = perEdge[k]!;
        const side = edges[k]!.name;
        const addedP50 = p(m.ms, 0.5) - p(directMs, 0.5);
        const addedP99 = p(m.ms, 0.99) - p(directMs, 0.99);
        const goals = side === "Miniflare";
        const note = goals
          ? `floor (GET /healthz) ${floorOf(k).toFixed(1)} ms, gate ${p(m.gate, 0.5).toFixed(1)} ms, rest ${p(ownMs[k]!, 0.5).toFixed(1)} ms p50`
          : `no goal: wrangler dev's own floor (GET /healthz through its dev proxy) is ${floorOf(k).toFixed(1)} ms p50 here, Miniflare's ${floorOf(1).toFixed(1)} ms`;
        // The tail beside its parts: the host's own (the floor's p99), the path's, and what the direct side had.
        const tailNote =
          `through the edge p99 ${p(m.ms, 0.99).toFixed(1)} ms vs direct p99 ${p(directMs, 0.99).toFixed(1)} ms; ` +
          `floor p99 ${p(perEdge[k]!.floor, 0.99).toFixed(1)} ms, gate p99 ${p(m.gate, 0.99).toFixed(1)} ms, rest p99 ${p(ownMs[k]!, 0.99).toFixed(1)} ms`;
        figures.push(
          figure(`${side}: added p50`, addedP50, "ms", goals ? { goal: { op: "<=", target: 5 }, ...(addedP50 > 5 ? { note } : {}) } : { note }),
          figure(`${side}: added p99`, addedP99, "ms", goals ? { goal: { op: "<=", target: 15 }, ...(addedP99 > 15 ? { note: tailNote } : {}) } : { note: tailNote }),
          figure(`${side}: through the edge p50`, p(m.ms, 0.5), "ms"),
          figure(`${side}: worker floor p50 (GET /healthz)`, floorOf(k), "ms"),
          figure(`${side}: gate p50 (Server-Timing: the isolate's lease, a D1 round trip when it refills)`, p(m.gate, 0.5), "ms"),
          // workerd's clock moves only on I/O: a gate without D1 reads 0 ms, a refill ≥ 1 ms.
          figure(`${side}: completions whose gate refilled the lease (gate ≥ 1 ms)`, (100 * m.gate.filter((g) => g >= 1).length) / m.gate.length, "%"),
          figure(`${side}: runner call as the worker saw it p50 (Server-Timing)`, p(m.runner, 0.5), "ms"),
          figure(`${side}: rest of the edge p50 (added − floor − gate, per round)`, p(ownMs[k]!, 0.5), "ms", {
            note: "a breakdown, not a bound: the floor itself includes this worker's middleware and log line",
          }),
        );
      }
      figures.push(figure("wrangler dev: one local D1 query p50 (GET /v1/usage − floor, per round)", p(oneQueryMs, 0.5), "ms"));
      return { figures };
    } finally {
      for (const edge of edges.reverse()) await edge.stop();
      await runner.stop();
      rmSync(persistDir, { recursive: true, force: true });
      rmSync(miniflareDir, { recursive: true, force: true });
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
