// Routing at scale (#12): bounded-load routing on the rendezvous rank (the pure rule and one
// routing test), active /healthz probes (a hung runner leaves the rotation without traffic, a
// recovered one rejoins), and GET /v1/admin/runners.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import worker from "../../workers/src/index.js";
import type { Env } from "../../workers/src/env.js";
import { BOUNDED_LOAD_FACTOR, BOUNDED_LOAD_FLOOR, boundedLoadOrder } from "../../workers/src/runners/bounded-load.js";
import { runnerHealth } from "../../workers/src/runners/health.js";
import { mixRoutingKey, rendezvousRank } from "../../workers/src/runners/rendezvous.js";
import { createRng } from "#core/random/index";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { runnerStatuses } from "../../workers/src/runners/runner-status.js";
import { BUSY_HEALTHZ_MS, installFakeRunners, MODEL, RUNNERS, type FakeRunners } from "./fake-runner.js";
import { ADMIN, callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";

describe("bounded-load order (pure rule)", () => {
  const R = ["a", "b", "c", "d"];
  const loads = (m: Record<string, number | null>) => (r: string) => m[r] ?? null;

  it("keeps the rank while no first choice is above max(floor, c × mean)", () => {
    expect(boundedLoadOrder(R, loads({ a: 4, b: 0, c: 0, d: 0 }))).toEqual(R); // at the floor
    expect(boundedLoadOrder(R, loads({ a: 12, b: 10, c: 10, d: 8 }))).toEqual(R); // 12 ≤ 1.25 × 10
  });

  it("moves a first choice above the bound behind the others, keeping their rank order", () => {
    // mean 8, limit max(4, 10) = 10: a (20) is over
    expect(boundedLoadOrder(R, loads({ a: 20, b: 6, c: 2, d: 4 }))).toEqual(["b", "c", "d", "a"]);
    // two over the bound: both go last, in rank order
    expect(boundedLoadOrder(R, loads({ a: 30, b: 0, c: 30, d: 0 }))).toEqual(["b", "d", "a", "c"]);
  });

  it("unknown loads are never skipped and not averaged; fewer than 2 known loads change nothing", () => {
    expect(boundedLoadOrder(R, loads({ a: 50 }))).toEqual(R);
    // known: a 50, b 2 → mean 26, limit 32.5: a is over; c, d unknown stay in place
    expect(boundedLoadOrder(R, loads({ a: 50, b: 2 }))).toEqual(["b", "c", "d", "a"]);
  });

  it("on random loads: a permutation, a stable partition, and exactly the runners above the bound moved", () => {
    const rng = createRng(12);
    for (let t = 0; t < 300; t++) {
      const m: Record<string, number | null> = {};
      for (const r of R) m[r] = rng.nextFloat() < 0.2 ? null : Math.floor(rng.nextFloat() * 40);
      const out = boundedLoadOrder(R, loads(m));
      expect([...out].sort()).toEqual(R);
      const known = R.map((r) => m[r]).filter((x): x is number => x !== null);
      const limit = known.length < 2 ? Infinity : Math.max(BOUNDED_LOAD_FLOOR, (BOUNDED_LOAD_FACTOR * known.reduce((a, b) => a + b, 0)) / known.length);
      const isOver = (r: string) => m[r] !== null && m[r]! > limit;
      expect(out).toEqual([...R.filter((r) => !isOver(r)), ...R.filter(isOver)]);
    }
  });
});

let runners: FakeRunners;
beforeEach(() => {
  runners = installFakeRunners();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const adminRunners = () => callJson("/v1/admin/runners", { key: ADMIN });

async function setup() {
  const a = await newTenant("a");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
  const mix = [{ id: x.id as string, weight: 1 }];
  const order = rendezvousRank(mixRoutingKey(MODEL, mixKey([{ id: x.id, sha256: x.sha256, weight: 1 }])), RUNNERS);
  const complete = () => callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
  return { a, mix, order, complete };
}

describe("bounded-load routing", () => {
  it("skips the mix's first choice while its reported load is above c × the mean, and returns to it when it drops", async () => {
    const { order, complete } = await setup();
    runners.loads = { [order[0]!]: 20, [order[1]!]: 2, [order[2]!]: 2 };
    await adminRunners(); // a probe: every runner's load is known now
    expect((await complete()).status).toBe(200);
    expect(runners.completions.at(-1)!.runner).toBe(order[1]);
    runners.loads[order[0]!] = 3; // reported on its next answer or probe
    await adminRunners();
    expect((await complete()).status).toBe(200);
    expect(runners.completions.at(-1)!.runner).toBe(order[0]); // affinity back
    // Loads learnt from answers too: the first choice reports 50 in its response header…
    runners.loads[order[0]!] = 50;
    await complete();
    expect(runners.completions.at(-1)!.runner).toBe(order[0]);
    // …and the next request goes elsewhere.
    await complete();
    expect(runners.completions.at(-1)!.runner).toBe(order[1]);
  });
});

describe("active health probes and GET /v1/admin/runners", () => {
  it("needs the admin token", async () => {
    const a = await newTenant("a");
    expectError(await callJson("/v1/admin/runners"), 401);
    expectError(await callJson("/v1/admin/runners", { key: a.key }), 403);
  });

  it("lists every runner probed now: status, pid, load, models; a hung one is unreachable and down, and rejoins once it answers", async () => {
    runners.loads = { [RUNNERS[1]!]: 7 };
    runners.behaviour[RUNNERS[2]!] = "hang";
    const listed = await adminRunners();
    expect(listed.status).toBe(200);
    const byUrl = Object.fromEntries(listed.body.data.map((r: any) => [r.url, r]));
    expect(Object.keys(byUrl)).toEqual(RUNNERS);
    expect(byUrl[RUNNERS[0]!]).toMatchObject({ healthy: true, status: "ok", pid: 1000, load: 0, models: [MODEL], last_error: null, consecutive_failures: 0 });
    expect(byUrl[RUNNERS[1]!]).toMatchObject({ healthy: true, status: "ok", pid: 1001, load: 7 });
    expect(byUrl[RUNNERS[0]!].last_ok_at).toMatch(/^\d{4}-\d\d-\d\dT/);
    const hung = byUrl[RUNNERS[2]!];
    expect(hung).toMatchObject({ healthy: false, status: "unreachable", pid: null, consecutive_failures: 1 });
    expect(hung.last_error).toMatch(/timeout|abort/i);
    expect(hung.down_until).not.toBeNull();
    expect(runnerHealth.isHealthy(RUNNERS[2]!)).toBe(false);

    runners.behaviour[RUNNERS[2]!] = "ok"; // SIGCONT
    const again = await adminRunners();
    const back = again.body.data.find((r: any) => r.url === RUNNERS[2]);
    expect(back).toMatchObject({ healthy: true, status: "ok", pid: 1002, consecutive_failures: 0, last_error: null, down_until: null });
  });

  it("a busy runner (/healthz held by a long model step) stays healthy within RUNNER_PROBE_TIMEOUT_S; slower than it, it is marked down", async () => {
    runners.behaviour[RUNNERS[0]!] = "busy";
    const [busy] = await runnerStatuses({ ...env, RUNNER_PROBE_TIMEOUT_S: "2" } as Env);
    expect(busy).toMatchObject({ url: RUNNERS[0], healthy: true, status: "ok", consecutive_failures: 0 });
    expect(busy!.probe_ms).toBeGreaterThanOrEqual(BUSY_HEALTHZ_MS - 100);
    const [late] = await runnerStatuses({ ...env, RUNNER_PROBE_TIMEOUT_S: "1" } as Env);
    expect(late).toMatchObject({ url: RUNNERS[0], healthy: false, status: "unreachable", consecutive_failures: 1 });
    expect(late!.last_error).toMatch(/timeout|abort/i);
  });

  it("a draining runner is reported as draining and taken out of the rotation", async () => {
    runners.behaviour[RUNNERS[0]!] = "draining";
    const listed = await adminRunners();
    expect(listed.body.data[0]).toMatchObject({ url: RUNNERS[0], healthy: false, status: "draining" });
  });

  it("traffic starts background probes (RUNNER_PROBE_INTERVAL_S) that take a hung runner out of the rotation before any request is sent to it", async () => {
    const { a, mix, order } = await setup();
    const vars = { ...env, RUNNER_PROBE_INTERVAL_S: "60" } as Env;
    const completeWithProbes = async () => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(
        new Request("http://edge/v1/completions", {
          method: "POST",
          headers: { authorization: `Bearer ${a.key}`, "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, prompt: "Hi", adapters: mix }),
        }),
        vars,
        ctx,
      );
      const status = res.status;
      await res.text();
      await waitOnExecutionContext(ctx); // the background probe, run to its end
      return status;
    };
    // A runner that no request goes to hangs (SIGSTOP): traffic alone would never find it.
    const idle = order[2]!;
    runners.behaviour[idle] = "hang";
    expect(await completeWithProbes()).toBe(200);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0]]);
    // The probe ran alongside the request: every runner was probed, the hung one marked down by it.
    for (const r of RUNNERS) expect(runners.probes[r]).toBe(1);
    expect(runnerHealth.isHealthy(idle)).toBe(false);
    expect(runnerHealth.get(idle).lastError).toMatch(/probe/);
    // Within the interval no second probe starts.
    expect(await completeWithProbes()).toBe(200);
    expect(runners.probes[order[0]!]).toBe(1);
  });
});
