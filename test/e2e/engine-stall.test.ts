// Engine liveness through the edge (#12 "Hang detection"): a runner whose engine's step promise
// never settles while its event loop keeps running (a lost callback, a deadlocked await — the case
// SIGSTOP does not cover: the process answers, its engine does not progress). A hung ONNX Runtime
// run is not this case: its blocking native call freezes the event loop, which the edge sees like
// SIGSTOP. The runner here is the real runner app and engine on the real tiny model, in this process
// so one step's promise can be held (model/testing/step-faults.ts); the edge is the real worker under
// `wrangler dev`. The runner withholds keep-alives once its engine has stalled, so the edge's stream
// idle timeout ends the open stream with an error event and [DONE]; its /healthz turns 503 "stalled",
// so the edge's probes take it out of rotation; new completions are refused at once (no waiting
// for the time-to-headers timeout); when the step returns, everything recovers.
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ModelEngine } from "../../gpu-runner/src/engine/index.js";
import { ensureModel } from "../../gpu-runner/src/model-build/index.js";
import { loadModel, type BaseModel } from "../../gpu-runner/src/model/index.js";
import { stepFaults, type StepFaults } from "../../gpu-runner/src/model/testing/step-faults.js";
import { createRunnerApp } from "../../gpu-runner/src/server/index.js";
import { startEdge, type Service } from "../../scripts/lib/stack.js";

const SECRET = "e2e-engine-stall-secret";
const ADMIN = "e2e-engine-stall-admin";
const KEY = "le_e2e_stall_" + "s".repeat(28);
const MODEL = "loraedge-tiny";
const KEEP_ALIVE_MS = 250;
const STALL_LIMIT_MS = 1_000;
const IDLE_TIMEOUT_S = 2;

/** Reads an SSE response to its end: the data of each event. */
async function sseData(res: Response): Promise<string[]> {
  return (await res.text())
    .split("\n\n")
    .map((b) => b.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n"))
    .filter(Boolean);
}

async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("a runner whose engine hangs in a step, behind the real edge", () => {
  const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-stall-"));
  let model: BaseModel | undefined;
  let engine: ModelEngine | undefined;
  let faults: StepFaults | undefined;
  let server: ReturnType<typeof serve> | undefined;
  let edge: Service | undefined;
  let runnerUrl = "";

  const api = (p: string, json?: unknown, token = KEY) =>
    fetch(edge!.url + p, {
      method: json === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${token}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  const runnerStatus = async () =>
    ((await (await api("/v1/admin/runners", undefined, ADMIN)).json()) as { data: { status: string; healthy: boolean }[] }).data[0]!;

  beforeAll(async () => {
    model = await loadModel(await ensureModel(MODEL), { backend: "node", threads: 1 });
    engine = new ModelEngine(model, null, { limits: { maxBatch: 8, maxTokens: 8192, maxQueue: 16, prefillChunk: 64 }, merge: { policy: "never", budgetBytes: 0 } });
    faults = stepFaults(model);
    const runner = createRunnerApp({ engines: [engine], adapters: null, secret: SECRET, replayWindowS: 300, sseKeepAliveMs: KEEP_ALIVE_MS, stallLimitMs: STALL_LIMIT_MS });
    runner.state.ready = true;
    const address = await new Promise<AddressInfo>((resolve) => {
      server = serve({ fetch: runner.app.fetch, port: 0, hostname: "127.0.0.1" }, resolve);
    });
    runnerUrl = `http://127.0.0.1:${address.port}`;
    edge = await startEdge({
      runnerUrls: [runnerUrl],
      runnerSecret: SECRET,
      adminToken: ADMIN,
      persistDir,
      vars: { RUNNER_HEADERS_TIMEOUT_S: "10", RUNNER_STREAM_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S), RUNNER_PROBE_INTERVAL_S: "1", LOG_LEVEL: "warn" },
    });
    const seeded = await fetch(`${edge.url}/v1/tenants/stall`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ api_key: KEY, rpm_limit: 1_000_000, tokens_per_day: 1_000_000_000 }),
    });
    expect(seeded.status).toBe(201);
  });

  afterAll(async () => {
    faults?.restore();
    await edge?.stop();
    (server as { closeAllConnections?(): void } | undefined)?.closeAllConnections?.();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await engine?.dispose();
    rmSync(persistDir, { recursive: true, force: true });
  });

  it("ends the open stream within stall limit + idle timeout, leaves rotation, refuses new work at once, and rejoins when the step returns", async () => {
    const body = { model: MODEL, prompt: "Stalls at the edge", max_tokens: 40, temperature: 0, ignore_eos: true };
    expect((await api("/v1/completions", body)).status).toBe(200);
    expect(await runnerStatus()).toMatchObject({ status: "ok", healthy: true });

    const stepsBefore = faults!.started;
    faults!.hangAfter(3); // three tokens go out, then the engine hangs inside its next step
    const res = await api("/v1/completions", { ...body, stream: true });
    expect(res.status).toBe(200);
    const events = sseData(res);
    await until("the hung step", async () => (faults!.started >= stepsBefore + 4 ? true : undefined));
    const hungAt = Date.now();
    const data = await events;
    const endedAfterMs = Date.now() - hungAt;
    expect(data.at(-1)).toBe("[DONE]");
    expect(data.filter((d) => d === "[DONE]")).toHaveLength(1);
    const errors = data.filter((d) => d.includes('"error"')).map((d) => JSON.parse(d) as { error: { type: string } });
    expect(errors).toHaveLength(1);
    expect(errors[0]!.error.type).toBe("runner_timeout");
    expect(data.filter((d) => d.startsWith('{"id"')).length).toBe(3); // the tokens sampled before the hang
    // Keep-alives until the stall limit, then silence for the idle timeout (keep-alives alone would hold it off forever).
    expect(endedAfterMs).toBeGreaterThanOrEqual(IDLE_TIMEOUT_S * 1000 + STALL_LIMIT_MS / 2);
    expect(endedAfterMs).toBeLessThan(STALL_LIMIT_MS + IDLE_TIMEOUT_S * 1000 + 3_000);

    // The edge's probes see /healthz 503 "stalled": out of rotation.
    expect(await runnerStatus()).toMatchObject({ status: "stalled", healthy: false });
    // A new request is refused by the stalled runner at once (its only runner: 503), not held for RUNNER_HEADERS_TIMEOUT_S.
    const started = Date.now();
    const refused = await api("/v1/completions", body);
    expect(refused.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5_000);

    // The step returns: the runner is ready again and serves.
    faults!.release();
    await until("the runner back in rotation", async () => ((await runnerStatus()).status === "ok" ? true : undefined));
    await until("a served completion", async () => ((await api("/v1/completions", body)).status === 200 ? true : undefined));
    expect(await runnerStatus()).toMatchObject({ status: "ok", healthy: true });
  });
});
