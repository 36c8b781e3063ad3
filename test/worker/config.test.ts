// Worker vars are validated once (zod): a bad value is a clear 500 naming the variable, never a silent default.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../workers/src/app.js";
import type { Env } from "../../workers/src/env.js";
import { DEFAULT_MAX_MIX_ADAPTERS, edgeVars, runnerTimeouts, uploadLimits } from "../../workers/src/limits/config.js";
import { ADMIN, EDGE } from "./helpers.js";

const app = createApp();
const fetchWith = (vars: Partial<Record<keyof Env, unknown>>, path = "/v1/models") =>
  app.fetch(new Request(EDGE + path, { headers: { authorization: `Bearer ${ADMIN}` } }), { ...env, ...vars } as Env);

describe("worker vars", () => {
  it.each([
    ["MAX_ADAPTER_BYTES", "64MB"],
    ["RATE_LIMIT_RPM", "-5"],
    ["TOKENS_PER_DAY", "1.5"],
    ["MAX_MIX_ADAPTERS", "0"],
    ["MAX_MIX_ADAPTERS", "1e9"],
    ["MAX_ADAPTER_RANK", 0],
    ["RUNNER_HEADERS_TIMEOUT_S", "0"],
    ["RUNNER_STREAM_IDLE_TIMEOUT_S", "2.5"],
    ["RUNNER_PROBE_INTERVAL_S", "-1"],
    ["RUNNER_PROBE_TIMEOUT_S", "0"],
    ["BUDGET_LEASE_TOKENS", "-1"],
    ["RATE_LEASE_REQUESTS", "many"],
    ["USAGE_FLUSH_MS", "0.5"],
  ])("%s=%j → 500 internal_error naming the variable, on any route", async (name, value) => {
    for (const path of ["/v1/models", "/healthz"]) {
      const res = await fetchWith({ [name]: value }, path);
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe("internal_error");
      expect(body.error.message).toContain(name);
      expect(body.error.message).toContain(JSON.stringify(String(value)));
    }
  });

  it("names every bad variable at once", async () => {
    const res = await fetchWith({ MAX_ADAPTER_BYTES: "x", MAX_MIX_ADAPTERS: "y" });
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/MAX_ADAPTER_BYTES.*MAX_MIX_ADAPTERS/);
  });

  it("unset or empty → the default; numbers (bare TOML values) and padded strings are accepted", () => {
    const vars = edgeVars({ ...env, MAX_MIX_ADAPTERS: "", MAX_ADAPTER_RANK: 32 as never, RATE_LIMIT_RPM: " 7 " } as Env);
    expect(vars.MAX_MIX_ADAPTERS).toBe(DEFAULT_MAX_MIX_ADAPTERS);
    expect(vars.MAX_ADAPTER_RANK).toBe(32);
    expect(vars.RATE_LIMIT_RPM).toBe(7);
    expect(uploadLimits(env as Env).maxBytes).toBe(1048576); // the test pool's MAX_ADAPTER_BYTES
    // Probes wait 10 s by default: longer than a model step on CPU, which blocks the runner's /healthz.
    expect(runnerTimeouts({ ...env, RUNNER_PROBE_TIMEOUT_S: undefined } as Env).probeTimeoutMs).toBe(10_000);
    expect(runnerTimeouts(env as Env).probeTimeoutMs).toBe(1_000); // the test pool's
  });

  it("a valid configuration serves requests as before", async () => {
    const res = await fetchWith({}, "/healthz");
    expect(res.status).toBe(200);
  });
});
