// Chaos (#12 "Done when"): three real runner processes (supervised like `LORAEDGE_RUNNERS=3 npm
// start`) behind the real edge under `wrangler dev`, short hang timeouts. While a stream of unary
// requests runs throughout:
//   1. kill -9 the runner serving a stream mid-way → the client gets an error event and [DONE];
//      the supervisor restarts the runner;
//   2. SIGSTOP the runner serving another stream → unary requests for its mixes fail over after
//      the time-to-headers timeout, the open stream ends with runner_timeout within the idle timeout;
//   3. SIGCONT it → both rejoin (admin view healthy, their mixes served by them again);
// no unary request is lost, and the usage endpoint equals exactly what the responses reported
// (a cut stream: the prompt + the tokens it delivered).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { startRunnerPool, type RunnerPool } from "../../scripts/lib/runner-pool.js";
import { freePort, startEdge, type Service } from "../../scripts/lib/stack.js";
import { mixRoutingKey, rendezvousRank } from "../../workers/src/runners/rendezvous.js";
import { runnerLabel } from "../../workers/src/runners/runner-label.js";
import { sseData } from "../../client/src/sse.js";
import { randomPeftFiles } from "./edge-stack.js";

const SECRET = "e2e-chaos-runner-secret";
const ADMIN = "e2e-chaos-admin-token";
const KEY = "le_e2e_chaos_" + "c".repeat(28);
const MODEL = "loraedge-tiny";
const PROMPT = "Chaos at the edge";
const HEADERS_TIMEOUT_S = 3;
const IDLE_TIMEOUT_S = 2;

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
async function until<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("chaos: 3 runners, kill -9 and SIGSTOP under traffic", () => {
  const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-chaos-"));
  let pool: RunnerPool | undefined;
  let edge: Service | undefined;
  let base = "";
  const supervisorLog: string[] = [];
  const edgeLog: string[] = [];

  const api = (p: string, json?: unknown, key = KEY) =>
    fetch(base + p, {
      method: json === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${key}`, ...(json === undefined ? {} : { "content-type": "application/json" }) },
      body: json === undefined ? undefined : JSON.stringify(json),
    });

  beforeAll(async () => {
    const edgePort = await freePort();
    const ports: number[] = [];
    while (ports.length < 3) {
      const p = await freePort();
      if (p !== edgePort && !ports.includes(p)) ports.push(p);
    }
    pool = await startRunnerPool({
      ports,
      secret: SECRET,
      edgeUrl: `http://127.0.0.1:${edgePort}`,
      models: MODEL,
      env: { RUNNER_THREADS: "1", RUNNER_SSE_KEEPALIVE_MS: "250", RUNNER_LOG_LEVEL: "warn" },
      backoffMs: 300,
      log: (m) => supervisorLog.push(m),
    });
    edge = await startEdge({
      port: edgePort,
      runnerUrls: pool.urls,
      runnerSecret: SECRET,
      adminToken: ADMIN,
      persistDir,
      vars: {
        RUNNER_HEADERS_TIMEOUT_S: String(HEADERS_TIMEOUT_S),
        RUNNER_STREAM_IDLE_TIMEOUT_S: String(IDLE_TIMEOUT_S),
        RUNNER_PROBE_INTERVAL_S: "1",
        // Short, like the other hang timeouts here (the tiny model's steps take ms; the default 10 s outlasts a CPU step).
        RUNNER_PROBE_TIMEOUT_S: "2",
        LOG_LEVEL: "warn",
      },
      onLine: (line) => edgeLog.push(line),
    });
    base = edge.url;
    const seeded = await fetch(`${base}/v1/tenants/chaos`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ api_key: KEY, rpm_limit: 1_000_000, tokens_per_day: 1_000_000_000 }),
    });
    expect(seeded.status).toBe(201);
  });

  afterAll(async () => {
    for (const r of pool?.runners ?? []) {
      try {
        if (r.service) process.kill(r.service.process.pid!, "SIGCONT");
      } catch {
        /* gone */
      }
    }
    await Promise.all([edge?.stop(), pool?.stop()]);
    rmSync(persistDir, { recursive: true, force: true });
  });

  it("loses no unary request, ends cut streams cleanly, fails over, rejoins, and bills exactly what was delivered", async () => {
    // One adapter; its weight picks the mix, so a mix can be chosen per runner (rendezvous is public).
    const manifest = ((await (await api(`/v1/models/${MODEL}`)).json()) as { manifest: ModelManifest }).manifest;
    const files = randomPeftFiles(manifest, 7, 2);
    const form = new FormData();
    form.set("name", "chaos");
    form.set("base_model", MODEL);
    form.set("adapter_config.json", new Blob([JSON.stringify(files.config)], { type: "application/json" }), "adapter_config.json");
    form.set("adapter_model.safetensors", new Blob([files.weights as Uint8Array<ArrayBuffer>]), "adapter_model.safetensors");
    const uploaded = await fetch(`${base}/v1/adapters`, { method: "POST", headers: { authorization: `Bearer ${KEY}` }, body: form });
    expect(uploaded.status).toBe(201);
    const { id, sha256 } = (await uploaded.json()) as { id: string; sha256: string };

    const urls = pool!.urls;
    // The opaque x-loraedge-runner label of each runner (the edge's runner-label.ts).
    const labels = await Promise.all(urls.map((u) => runnerLabel(SECRET, u)));
    const host = (u: string) => labels[urls.indexOf(u)]!;
    const weightFor: number[] = [];
    for (let k = 1; weightFor.filter((w) => w !== undefined).length < 3 && k < 500; k++) {
      const w = k / 8;
      const owner = urls.indexOf(rendezvousRank(mixRoutingKey(MODEL, mixKey([{ id, sha256, weight: w }])), urls)[0]!);
      weightFor[owner] ??= w;
    }
    expect(weightFor.filter((w) => w !== undefined)).toHaveLength(3);
    const body = (runner: number, extra: object = {}) => ({
      model: MODEL, prompt: PROMPT, temperature: 0, max_tokens: 4, adapters: [{ id, weight: weightFor[runner]! }], ...extra,
    });

    // What the responses reported, to compare with the usage endpoint at the end.
    type Usage = { prompt_tokens: number; completion_tokens: number };
    const billed = { requests: 0, prompt: 0, completion: 0 };
    let promptTokens = 0;
    const recordUnary = (u: Usage) => {
      billed.requests++;
      billed.prompt += u.prompt_tokens;
      billed.completion += u.completion_tokens;
      promptTokens = u.prompt_tokens;
    };
    /** A cut stream: billed for its prompt (every answer with this prompt reported the same count) and the tokens it delivered. */
    const recordCut = (delivered: number) => {
      billed.requests++;
      billed.prompt += promptTokens;
      billed.completion += delivered;
    };

    // Every runner serves its own mix (warm: adapter fetched and cached there).
    for (let r = 0; r < 3; r++) {
      const res = await api("/v1/completions", body(r));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-loraedge-runner")).toBe(host(urls[r]!));
      recordUnary(((await res.json()) as { usage: Usage }).usage);
    }

    // A stream of unary requests throughout, over all three runners' mixes.
    let running = true;
    const failures: string[] = [];
    let served = 0;
    const loop = async (lane: number) => {
      for (let i = 0; running; i++) {
        const res = await api("/v1/completions", body((i + lane) % 3)).catch((e: unknown) => e as Error);
        if (res instanceof Error || res.status !== 200) {
          failures.push(res instanceof Error ? res.message : `${res.status} ${await res.text()}`);
          continue;
        }
        recordUnary(((await res.json()) as { usage: Usage }).usage);
        served++;
      }
    };
    const lanes = [loop(0), loop(1)];
    await until("unary traffic", async () => (served >= 6 ? true : undefined));

    /** Starts a long stream on runner r's mix; resolves once its first token arrived. */
    const openStream = async (r: number) => {
      const res = await api("/v1/completions", body(r, { stream: true, max_tokens: 480, ignore_eos: true }));
      expect(res.status).toBe(200);
      expect(res.headers.get("x-loraedge-runner")).toBe(host(urls[r]!));
      const events = sseData(res.body!, { keepDone: true });
      const first = await events.next();
      expect(first.done).toBe(false);
      return { events, first: first.value as string };
    };
    /** Drains a stream: its token chunks, its error events, whether [DONE] ended it. */
    const drain = async (s: { events: AsyncGenerator<string>; first: string }) => {
      const all = [s.first];
      for await (const e of s.events) all.push(e);
      const json = all.filter((e) => e !== "[DONE]").map((e) => JSON.parse(e));
      return {
        done: all.at(-1) === "[DONE]" && all.filter((e) => e === "[DONE]").length === 1,
        tokens: json.filter((j) => j.choices?.length).length,
        finished: json.some((j) => j.choices?.[0]?.finish_reason),
        errors: json.filter((j) => j.error).map((j) => j.error.type as string),
      };
    };
    const admin = async () => {
      const res = await fetch(`${base}/v1/admin/runners`, { headers: { authorization: `Bearer ${ADMIN}` } });
      return ((await res.json()) as { data: { url: string; healthy: boolean; status: string; pid: number | null }[] }).data;
    };

    // 1. kill -9 mid-stream.
    const victim = pool!.runners[0]!;
    const oldPid = victim.service!.process.pid!;
    const restarted = pool!.nextStart(0);
    const killedStream = await openStream(0);
    process.kill(oldPid, "SIGKILL");
    const killed = await drain(killedStream);
    expect(killed.done).toBe(true);
    expect(killed.finished).toBe(false); // cut mid-way, not completed
    expect(killed.errors).toEqual(["runner_error"]);
    expect(killed.tokens).toBeGreaterThan(0);
    recordCut(killed.tokens);

    // 2. SIGSTOP the runner serving another stream.
    const stopped = pool!.runners[1]!;
    const stoppedStream = await openStream(1);
    process.kill(stopped.service!.process.pid!, "SIGSTOP");
    // A request for the stopped runner's mix right now: it waits for headers, then fails over.
    const failedOver = await api("/v1/completions", body(1));
    expect(failedOver.status).toBe(200);
    expect(failedOver.headers.get("x-loraedge-runner")).not.toBe(host(urls[1]!));
    recordUnary(((await failedOver.json()) as { usage: Usage }).usage);
    const hung = await drain(stoppedStream);
    expect(hung.done).toBe(true);
    expect(hung.finished).toBe(false);
    expect(hung.errors).toEqual(["runner_timeout"]);
    recordCut(hung.tokens);
    // Both paths were taken: a time-to-headers timeout and an idle timeout, each logged by the edge.
    await until("the edge's fail-over log line", async () => (edgeLog.some((l) => l.includes("timeout waiting for the runner")) ? true : undefined), 10_000);
    expect(edgeLog.some((l) => l.includes("runner stream idle"))).toBe(true);

    // 3. SIGCONT and the supervisor's restart: both rejoin.
    process.kill(stopped.service!.process.pid!, "SIGCONT");
    const newService = await restarted;
    expect(newService.process.pid).not.toBe(oldPid);
    expect(supervisorLog.some((l) => l.includes("exited") && l.includes(String(oldPid)))).toBe(true);
    await until("all runners healthy in the admin view", async () => {
      const view = await admin();
      return view.every((r) => r.healthy && r.status === "ok") && view[0]!.pid === newService.process.pid ? view : undefined;
    });
    for (const r of [0, 1]) {
      await until(`runner ${r} serving its mix again`, async () => {
        const res = await api("/v1/completions", body(r));
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        recordUnary(((await res.json()) as { usage: Usage }).usage);
        return res.headers.get("x-loraedge-runner") === host(urls[r]!) ? true : undefined;
      });
    }

    running = false;
    await Promise.all(lanes);
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(6);

    // Usage: exactly what the responses reported, once written (the edge writes usage in batches,
    // USAGE_FLUSH_MS after a request, and gives its lease back once idle: nothing reserved then).
    type UsageView = { data: { reserved_tokens: number }[]; totals: { requests: number; prompt_tokens: number; completion_tokens: number } };
    const usage = await until("usage written and nothing reserved", async () => {
      const view = (await (await api("/v1/usage")).json()) as UsageView;
      return view.data.every((d) => d.reserved_tokens === 0) ? view : undefined;
    }, 10_000);
    expect(usage.totals).toMatchObject({ requests: billed.requests, prompt_tokens: billed.prompt, completion_tokens: billed.completion });
  });
});
