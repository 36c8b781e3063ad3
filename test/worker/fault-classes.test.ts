// What a runner's error answer does at the edge follows its type's fault class
// (core/src/wire/errors.ts): fail over and mark down (runner), try the next (busy),
// or answer the client at once with the runner kept healthy (request, upstream).
import { describe, expect, it } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import { mixRoutingKey, rendezvousRank } from "../../workers/src/runners/rendezvous.js";
import { runnerHealth } from "../../workers/src/runners/health.js";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners, MODEL, RUNNERS } from "./fake-runner.js";
import { callJson, expectError, newTenant, uploadAdapter } from "./helpers.js";

const runners = useFakeRunners();

async function setup() {
  const a = await newTenant("a");
  const x = (await uploadAdapter(a.key, uploadForm(peftFiles(tinyAdapter(1, 2)), { name: "x" }))).body;
  const mix = [{ id: x.id as string, weight: 1 }];
  return { a, x, mix, order: rendezvousRank(mixRoutingKey(MODEL, mixKey([{ id: x.id, sha256: x.sha256, weight: 1 }])), RUNNERS) };
}

describe("runner error answers by fault class", () => {
  it("an adapter fetch failure (upstream) fails the request with 502, keeps the runner healthy, tries no other runner, and leaks no path", async () => {
    const { a, mix, order } = await setup();
    runners.behaviour[order[0]!] = "adapter-unavailable";
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expectError(r, 502, "adapter_unavailable");
    expect(r.body.error.message).not.toMatch(/internal|http:|runner-/);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0]]);
    expect(runnerHealth.isHealthy(order[0]!)).toBe(true);
    // Once the blob is back, the same runner serves the mix: affinity kept.
    runners.behaviour[order[0]!] = "ok";
    const ok = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expect(ok.status).toBe(200);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[0]]);
  });

  it("a draining runner (runner fault) is failed over and marked down; the next request skips it", async () => {
    const { a, mix, order } = await setup();
    runners.behaviour[order[0]!] = "draining";
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expect(r.status).toBe(200);
    expect(runnerHealth.isHealthy(order[0]!)).toBe(false);
    await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[1], order[1]]);
  });

  it("a queue-full runner (busy) is skipped without being marked down", async () => {
    const { a, mix, order } = await setup();
    runners.behaviour[order[0]!] = "429";
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expect(r.status).toBe(200);
    expect(runners.completions.map((c) => c.runner)).toEqual([order[0], order[1]]);
    expect(runnerHealth.isHealthy(order[0]!)).toBe(true);
  });

  it("when every runner fails the 503 names no runner, URL or runner message", async () => {
    const { a, mix } = await setup();
    for (const r of RUNNERS) runners.behaviour[r] = "500";
    const r = await callJson("/v1/completions", { key: a.key, json: { model: MODEL, prompt: "Hi", adapters: mix } });
    expectError(r, 503, "service_unavailable_error");
    expect(r.body.error.message).not.toMatch(/runner-[abc]|http|boom|status 500/);
  });
});
