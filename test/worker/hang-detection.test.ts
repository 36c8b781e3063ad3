// Hang detection (#12): a runner that stops answering (SIGSTOP) is failed over after
// RUNNER_HEADERS_TIMEOUT_S; a stream silent for RUNNER_STREAM_IDLE_TIMEOUT_S fails over before its
// first event, or ends with an error event and [DONE] after it (the runner marked down); a slow
// runner that sends keep-alive comments is not cut.
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import worker from "../../workers/src/index.js";
import type { Env } from "../../workers/src/env.js";
import { mixRoutingKey, rendezvousRank } from "../../workers/src/runners/rendezvous.js";
import { runnerHealth } from "../../workers/src/runners/health.js";
import { runnerLabel } from "../../workers/src/runners/runner-label.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners, MODEL, RUNNERS, SECRET, type FakeRunners } from "./fake-runner.js";
import { callJson, EDGE, newTenant, uploadAdapter } from "./helpers.js";

let runners: FakeRunners;
beforeEach(() => {
  runners = installFakeRunners();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The worker with 1 s hang timeouts (the defaults are 60 s and 30 s). */
async function completeWithTimeouts(key: string, json: unknown): Promise<Response> {
  const ctx = createExecutionContext();
  const vars = { ...env, RUNNER_HEADERS_TIMEOUT_S: "1", RUNNER_STREAM_IDLE_TIMEOUT_S: "1" } as Env;
  const req = new Request(`${EDGE}/v1/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(json),
  });
  const res = await worker.fetch(req, vars, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return new Response(text, { status: res.status, headers: res.headers });
}

async function setup() {
  const a = await newTenant("a");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
  const mix = [{ id: x.id as string, weight: 1 }];
  const order = rendezvousRank(mixRoutingKey(MODEL, mixKey([{ id: x.id, sha256: x.sha256, weight: 1 }])), RUNNERS);
  // host(u): the opaque x-loraedge-runner value of runner u.
  const labels = new Map(await Promise.all(RUNNERS.map(async (r) => [r, await runnerLabel(SECRET, r)] as const)));
  return { a, mix, order, host: (u: string) => labels.get(u)! };
}

const sseData = (text: string) =>
  text
    .split("\n\n")
    .map((b) => b.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n"))
    .filter(Boolean);

describe("hang detection", () => {
  it("a runner that sends no headers within RUNNER_HEADERS_TIMEOUT_S is failed over and marked down", async () => {
    const { a, mix, order, host } = await setup();
    runners.behaviour[order[0]!] = "hang";
    const res = await completeWithTimeouts(a.key, { model: MODEL, prompt: "Hi", adapters: mix });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-loraedge-runner")).toBe(host(order[1]!));
    expect(runnerHealth.isHealthy(order[0]!)).toBe(false);
    expect(runnerHealth.get(order[0]!).lastError).toMatch(/timeout/i);
  });

  it("a stream silent before its first event (keep-alive comments alone are no event) fails over", async () => {
    const { a, mix, order, host } = await setup();
    runners.behaviour[order[0]!] = "silent-stream";
    const res = await completeWithTimeouts(a.key, { model: MODEL, prompt: "Hi", adapters: mix, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-loraedge-runner")).toBe(host(order[1]!));
    const events = sseData(await res.text());
    expect(events.at(-1)).toBe("[DONE]");
    expect(events.filter((e) => e.includes('"error"'))).toEqual([]);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[1]]);
    expect(runnerHealth.isHealthy(order[0]!)).toBe(false);
  });

  it("a stream that goes silent mid-way ends with an error event and one [DONE], bills what was delivered, and marks the runner down", async () => {
    const { a, mix, order } = await setup();
    runners.behaviour[order[0]!] = "stall-mid-stream";
    const res = await completeWithTimeouts(a.key, { model: MODEL, prompt: "Hi", adapters: mix, stream: true });
    expect(res.status).toBe(200);
    const events = sseData(await res.text());
    expect(events).toHaveLength(4);
    expect(events.slice(0, 2).map((e) => JSON.parse(e).choices[0].text)).toEqual(["Hel", "lo"]);
    expect(JSON.parse(events[2]!).error.type).toBe("runner_timeout");
    expect(events[3]).toBe("[DONE]");
    expect(runnerHealth.isHealthy(order[0]!)).toBe(false);
    const usage = await callJson("/v1/usage", { key: a.key });
    expect(usage.body.totals).toMatchObject({ requests: 1, completion_tokens: 2 });
    // The next request for the same mix goes to the next runner while the hung one is down.
    runners.behaviour[order[0]!] = "ok";
    const next = await completeWithTimeouts(a.key, { model: MODEL, prompt: "Hi", adapters: mix });
    expect(runners.completions.at(-1)!.runner).toBe(order[1]);
    expect(next.status).toBe(200);
  });

  it("a slow runner that sends keep-alive comments for longer than the idle timeout is not cut", async () => {
    const { a, mix, order, host } = await setup();
    runners.behaviour[order[0]!] = "slow-stream";
    const res = await completeWithTimeouts(a.key, { model: MODEL, prompt: "Hi", adapters: mix, stream: true });
    expect(res.headers.get("x-loraedge-runner")).toBe(host(order[0]!));
    const events = sseData(await res.text());
    expect(events.map((e) => (e === "[DONE]" ? e : JSON.parse(e).choices[0]?.text))).toEqual(["Hel", "lo", "!", "", "[DONE]"]);
    expect(runnerHealth.isHealthy(order[0]!)).toBe(true);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0]]);
  });
});
