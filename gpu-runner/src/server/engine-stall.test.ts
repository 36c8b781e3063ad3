// Engine liveness through the runner's HTTP app, on the real tiny model: keep-alive comments and
// /healthz follow the engine's steps, not a timer. The faults made on purpose (model/testing/step-faults.ts):
// a model step whose promise never settles while the event loop runs (what liveness detects; a hung
// ONNX Runtime run blocks the event loop instead), and a step that blocks the thread like a long ORT run.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "#core/wire/hmac";
import { healthSchema, RUNNER_PATHS, type GenerateRequestInput } from "#core/wire/runner-api";
import { ModelEngine } from "../engine/index.js";
import { ensureModel } from "../model-build/index.js";
import { loadModel, type BaseModel } from "../model/index.js";
import { stepFaults, type StepFaults } from "../model/testing/step-faults.js";
import { createRunnerApp, KEEP_ALIVE_COMMENT } from "./app.js";

const SECRET = "engine-stall-test-secret";
const KEEP_ALIVE_MS = 50;
const STALL_LIMIT_MS = 1_000;

let model: BaseModel;
let engine: ModelEngine;
let faults: StepFaults;
let app: ReturnType<typeof createRunnerApp>["app"];
let state: ReturnType<typeof createRunnerApp>["state"];

beforeAll(async () => {
  model = await loadModel(await ensureModel("loraedge-tiny"), { backend: "node", threads: 1 });
  engine = new ModelEngine(model, null, { limits: { maxBatch: 4, maxTokens: 4096, maxQueue: 8, prefillChunk: 64 }, merge: { policy: "never", budgetBytes: 0 } });
  faults = stepFaults(model);
  const runner = createRunnerApp({ engines: [engine], adapters: null, secret: SECRET, replayWindowS: 300, sseKeepAliveMs: KEEP_ALIVE_MS, stallLimitMs: STALL_LIMIT_MS });
  runner.state.ready = true;
  app = runner.app;
  state = runner.state;
});
afterEach(() => {
  faults.release();
  faults.slowBy(0);
});
afterAll(async () => {
  faults?.restore();
  await engine?.dispose();
});

async function complete(body: Partial<GenerateRequestInput>, signal?: AbortSignal): Promise<Response> {
  const text = JSON.stringify({ model: model.manifest.id, prompt: "stall", temperature: 0, ignore_eos: true, ...body });
  const headers = await signRequest(SECRET, { method: "POST", pathAndQuery: RUNNER_PATHS.completions, body: text });
  return app.request(RUNNER_PATHS.completions, { method: "POST", body: text, headers, signal });
}

async function health() {
  const res = await app.request(RUNNER_PATHS.health);
  return { status: res.status, body: healthSchema.parse(await res.json()) };
}

/** Reads a stream in the background, timestamping what arrives. */
function record(res: Response) {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const pieces: { at: number; text: string }[] = [];
  const ended = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      pieces.push({ at: performance.now(), text: decoder.decode(value, { stream: true }) });
    }
  })();
  const text = () => pieces.map((p) => p.text).join("");
  const keepAlivesSince = (t: number) => pieces.filter((p) => p.at >= t && p.text.includes(KEEP_ALIVE_COMMENT.trim())).length;
  const tokenEvents = () => text().split("\n\n").filter((b) => b.startsWith("data: {")).length;
  return { ended, text, keepAlivesSince, tokenEvents };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 10 ms; 30 s by default, as the tiny model's first steps can take seconds on a loaded 2-core box. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = performance.now() + ms;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("engine liveness (real tiny model, a step made to hang)", () => {
  it("a hung step: keep-alives stop after the stall limit, /healthz and new completions answer 503, and both recover when it returns", async () => {
    expect(await health()).toMatchObject({ status: 200, body: { status: "ok", ready: true, engines: [{ model: model.manifest.id, busy: false, stalled: false }] } });

    faults.hangAfter(3); // prefill + two decode steps run: three tokens go out, then the next step hangs
    const stream = record(await complete({ stream: true, max_tokens: 20 }));
    await until("the hung step", () => faults.started === 4);
    const hungAt = performance.now();
    expect(stream.tokenEvents()).toBe(3);

    // Within the stall limit the engine is busy and counts as progressing: ready, keep-alives flow.
    expect(await health()).toMatchObject({ status: 200, body: { status: "ok", engines: [{ busy: true, stalled: false }] } });
    await until("a keep-alive while within the stall limit", () => stream.keepAlivesSince(hungAt) > 0, STALL_LIMIT_MS);
    const stalled = await (async () => {
      await until("/healthz stalled", async () => (await health()).status === 503);
      return health();
    })();
    expect(stalled.body).toMatchObject({ status: "stalled", ready: false, load: 1, engines: [{ busy: true, stalled: true }] });
    // Stalled means more than the limit; /healthz rounds to whole ms, so 1000.4 reads 1000.
    expect(stalled.body.engines![0]!.no_progress_ms).toBeGreaterThanOrEqual(STALL_LIMIT_MS);
    expect(stalled.body.engines![0]!.last_step_age_ms).toBeGreaterThanOrEqual(STALL_LIMIT_MS);

    const metrics = await (await app.request(RUNNER_PATHS.metrics)).text();
    const noProgress = Number(/^loraedge_runner_engine_no_progress_seconds\{model="loraedge-tiny"\} (\S+)$/m.exec(metrics)?.[1]);
    expect(noProgress).toBeGreaterThan(STALL_LIMIT_MS / 1000);

    // Stalled: no keep-alive for ten keep-alive periods.
    const silentFrom = performance.now() + KEEP_ALIVE_MS; // one written just before the check may still be arriving
    await sleep(10 * KEEP_ALIVE_MS);
    expect(stream.keepAlivesSince(silentFrom)).toBe(0);
    // A new completion would wait behind the hung step: refused (the edge fails over on a 503).
    const refused = await complete({ max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("5");
    expect(((await refused.json()) as { error: { type: string; message: string } }).error).toMatchObject({
      type: "service_unavailable_error",
      message: expect.stringMatching(/without completing a step/),
    });

    // The step returns: the stream finishes with every token, /healthz is ready again.
    faults.release();
    await stream.ended;
    expect(stream.text().trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(stream.tokenEvents()).toBe(21); // 20 tokens + the final chunk
    expect(await health()).toMatchObject({ status: 200, body: { status: "ok", engines: [{ busy: false, stalled: false }] } });
  });

  it("a client leaving a stream whose row is inside a hung step: the stream ends without waiting for the step to return", async () => {
    faults.hangAfter(1); // the prefill runs (one token out), the first decode step hangs
    const leaving = new AbortController();
    const stream = record(await complete({ stream: true, max_tokens: 5 }, leaving.signal));
    void stream.ended.catch(() => {}); // the read breaks when the request is aborted
    await until("the hung step", () => stream.tokenEvents() === 1 && engine.scheduler.liveness(0).busy);
    expect(state.openStreams).toBe(1);
    await until("the stall", () => engine.scheduler.liveness(STALL_LIMIT_MS).stalled);
    leaving.abort();
    await until("the stream closed", () => state.openStreams === 0, 40 * KEEP_ALIVE_MS);
    expect(engine.scheduler.liveness(STALL_LIMIT_MS)).toMatchObject({ busy: true, stalled: true }); // the step is still held
    faults.release();
    await until("the row freed", () => !engine.scheduler.liveness(0).busy);
  });

  it("a slow but progressing engine (steps slower than the keep-alive period) keeps its keep-alives and stays ready", async () => {
    // Each step blocks the thread like a long ORT run: nothing runs during a step, so keep-alives and
    // /healthz answers go out between steps — what this asserts is that they still do.
    faults.slowBy(3 * KEEP_ALIVE_MS); // well within the stall limit per step
    const started = performance.now(); // before the request: its prefill step may block before the response returns
    const stream = record(await complete({ stream: true, max_tokens: 4 }));
    const statuses: number[] = [];
    while (!stream.text().includes("[DONE]")) {
      statuses.push((await health()).status);
      await sleep(KEEP_ALIVE_MS);
    }
    await stream.ended;
    expect(performance.now() - started).toBeGreaterThan(4 * 3 * KEEP_ALIVE_MS);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(stream.keepAlivesSince(started)).toBeGreaterThan(0);
    expect(stream.tokenEvents()).toBe(5);
  });
});
