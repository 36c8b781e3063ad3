import { describe, expect, it } from "vitest";
import { signRequest } from "#core/wire/hmac";
import { RUNNER_PATHS } from "#core/wire/runner-api";
import { createRunnerApp } from "./app.js";

const SECRET = "app-test-secret";

describe("runner app before its models are loaded", () => {
  it("/healthz says starting (503) and completions are refused with 503 + Retry-After", async () => {
    const { app, state } = createRunnerApp({ engines: [], adapters: null, secret: SECRET, replayWindowS: 300 });
    const health = await app.request(RUNNER_PATHS.health);
    expect(health.status).toBe(503);
    expect(await health.json()).toEqual({ status: "starting", ready: false, models: [], pid: process.pid, load: 0 });

    const body = JSON.stringify({ model: "loraedge-tiny", prompt: "hi" });
    const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: RUNNER_PATHS.completions, body });
    const res = await app.request(RUNNER_PATHS.completions, { method: "POST", body, headers });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");

    state.draining = true;
    expect(((await (await app.request(RUNNER_PATHS.health)).json()) as { status: string }).status).toBe("draining");
  });

  it("answers unknown routes with the error shape", async () => {
    const { app } = createRunnerApp({ engines: [], adapters: null, secret: SECRET, replayWindowS: 300 });
    const res = await app.request("/nope");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });
});
