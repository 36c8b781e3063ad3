// A scripted stand-in for gpu-runner processes, answering the worker's outbound fetches
// (spy on globalThis.fetch). It verifies every request's HMAC signature like a real runner,
// and records what it received, so tests can check routing, signing and fail-over.
import { signatureHeaders, verifyRequest } from "#core/wire/hmac";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { tinyManifest } from "#core/testing/tiny-manifest";
import { LOAD_HEADER, PROMPT_TOKENS_HEADER, RUNNER_PATHS, SAMPLED_TOKENS_FIELD, type Completion, type GenerateRequest, type Health } from "#core/wire/runner-api";
import { RUNNER_BAKE_PATH, type BakeRequest, type BakeResponse } from "#core/wire/bake";
import { bake } from "#core/bake/index";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { env } from "cloudflare:workers";
import { blobKey } from "../../workers/src/adapters/blob-store.js";
import { invalidateCatalog } from "../../workers/src/runners/catalog.js";
import { runnerHealth } from "../../workers/src/runners/health.js";
import { runnerLoads } from "../../workers/src/runners/load.js";
import { resetProbeClock } from "../../workers/src/runners/probe.js";
import { afterEach, beforeEach, vi } from "vitest";

export const RUNNERS = ["http://runner-a.test", "http://runner-b.test", "http://runner-c.test"];
export const SECRET = "test-runner-secret";
export const MODEL = "tiny-test";

/** Targets of the tiny test model: 2 layers × (q_proj 16→16, v_proj 16→8) + a merge-only mlp. */
export const MANIFEST: ModelManifest = tinyManifest({
  id: MODEL,
  targets: [0, 1].flatMap((l) => [
    { module: `model.layers.${l}.self_attn.q_proj`, in: 16, out: 16, mode: "unmerged" as const, fanInFanOut: false },
    { module: `model.layers.${l}.self_attn.v_proj`, in: 16, out: 8, mode: "unmerged" as const, fanInFanOut: false },
    { module: `model.layers.${l}.mlp.gate_proj`, in: 16, out: 32, mode: "merge-only" as const, fanInFanOut: false },
  ]),
});

export type RunnerBehaviour =
  | "ok"
  | "down"
  | "500"
  | "400"
  | "429"
  | "broken-stream"
  /** 502 adapter_unavailable, as the real runner answers when its adapter fetch fails (an upstream fault). */
  | "adapter-unavailable"
  /** 503 service_unavailable_error, as a draining or loading runner answers (the runner's fault). */
  | "draining"
  /** A SIGSTOPped process: no answer at all on any path (the fetch only ends when the edge aborts it). */
  | "hang"
  /**
   * A healthy runner inside a long model step (ONNX Runtime's run blocks its event loop): its
   * /healthz answers ok after BUSY_HEALTHZ_MS; other paths as "ok".
   */
  | "busy"
  /** Completions: headers (200 SSE), one `: keep-alive` comment, then silence: no event ever. */
  | "silent-stream"
  /** Completions: two token events, then silence (a runner that hung mid-stream). */
  | "stall-mid-stream"
  /** Completions: a slow but healthy runner — `: keep-alive` comments every 200 ms for 1.6 s, then the usual stream. */
  | "slow-stream"
  /** A stream (or a JSON answer) the test drives token by token: see DrivenStream. */
  | "driven";

/**
 * A runner's answer the test controls, as a real runner generates it: `send(n)` samples n more
 * tokens (one event each, with the cumulative `sampled_tokens` a real runner adds), `finish()`
 * ends with the usage chunk and [DONE], `cut()` drops the connection mid-stream (what a runner
 * killed with -9 looks like from the edge; that cannot be produced inside Miniflare). A request
 * with `stream: false` is answered as JSON by `finish()` with completion_tokens = sent.
 * Prompt tokens: the prompt's length, announced up front in the x-loraedge-prompt-tokens header.
 */
export interface DrivenStream {
  body: GenerateRequest;
  /** Tokens sampled so far. */
  readonly sent: number;
  send(n: number): void;
  finish(): void;
  cut(): void;
  /** The reason the edge cancelled the runner's stream with (the client went away); null while not cancelled. */
  readonly cancelled: string | null;
}

export interface ReceivedCompletion {
  runner: string;
  body: GenerateRequest;
}

export interface FakeRunners {
  behaviour: Record<string, RunnerBehaviour>;
  /** The load each runner reports (LOAD_HEADER of completions, `load` of /healthz); default 0. */
  loads: Record<string, number>;
  /** /healthz calls received, per runner. */
  probes: Record<string, number>;
  completions: ReceivedCompletion[];
  /** The answers of runners whose behaviour is "driven", in arrival order. */
  driven: DrivenStream[];
  bakes: { runner: string; body: BakeRequest }[];
  /** Non-runner requests pass to this (default: the real fetch). */
  restore(): void;
}

function completionFor(body: GenerateRequest, runner: string): Completion {
  const text = ` fake:${runner.slice(7, 15)}:${body.adapters.map((a) => `${a.id}*${a.weight}`).join("+")}`;
  const n = Math.min(body.max_tokens, 4);
  return {
    id: "cmpl-fake",
    object: "text_completion",
    created: 1,
    model: body.model,
    choices: [{ index: 0, text, finish_reason: "length", logprobs: null }],
    usage: { prompt_tokens: body.prompt !== undefined ? body.prompt.length : JSON.stringify(body.messages).length, completion_tokens: n, total_tokens: 0 },
  };
}

function sse(body: GenerateRequest, runner: string): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const c = completionFor(body, runner);
  const tokens = ["Hel", "lo", "!"];
  const events = tokens.map((t) =>
    JSON.stringify({ ...c, choices: [{ index: 0, text: t, finish_reason: null, logprobs: null }], usage: undefined }),
  );
  events.push(
    JSON.stringify({
      ...c,
      choices: [{ index: 0, text: "", finish_reason: "length", logprobs: null }],
      usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
    }),
  );
  events.push("[DONE]");
  return new ReadableStream({
    start(controller) {
      for (const e of events) controller.enqueue(enc.encode(`data: ${e}\n\n`));
      controller.close();
    },
  });
}

/**
 * The answer of a "driven" runner. Everything that touches the response (stream controller,
 * timers) runs in the worker's request context, polling plain state the test changes through
 * DrivenStream: workerd forbids one context to use another's I/O objects.
 */
function drivenAnswer(body: GenerateRequest, driven: DrivenStream[]): Promise<Response> | Response {
  const enc = new TextEncoder();
  const promptTokens = typeof body.prompt === "string" || Array.isArray(body.prompt) ? body.prompt.length : 0;
  const base = { id: "cmpl-driven", object: "text_completion", created: 1, model: body.model };
  const headers = { [PROMPT_TOKENS_HEADER]: String(promptTokens) };
  const commands: ("token" | "finish" | "cut")[] = [];
  let sampled = 0; // tokens the test released
  let produced = 0; // tokens the response carried so far
  let cancelledWith: string | null = null;
  const nextCommand = async () => {
    while (commands.length === 0) await new Promise((r) => setTimeout(r, 1));
    return commands.shift()!;
  };
  const event = (data: unknown) => enc.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
  const usage = () => ({ prompt_tokens: promptTokens, completion_tokens: produced, total_tokens: promptTokens + produced });
  driven.push({
    body,
    get sent() {
      return sampled;
    },
    send(n) {
      for (let i = 0; i < n; i++) commands.push("token");
      sampled += n;
    },
    finish: () => commands.push("finish"),
    cut: () => commands.push("cut"),
    get cancelled() {
      return cancelledWith;
    },
  });
  if (!body.stream) {
    return (async () => {
      while ((await nextCommand()) === "token") produced++;
      return Response.json({ ...base, choices: [{ index: 0, text: "done", finish_reason: "length", logprobs: null }], usage: usage() }, { headers });
    })();
  }
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const command = await nextCommand();
      if (command === "token") {
        produced++;
        controller.enqueue(event({ ...base, choices: [{ index: 0, text: `t${produced} `, finish_reason: null, logprobs: null }], [SAMPLED_TOKENS_FIELD]: produced }));
      } else if (command === "finish") {
        controller.enqueue(event({ ...base, choices: [{ index: 0, text: "", finish_reason: "length", logprobs: null }], usage: usage(), [SAMPLED_TOKENS_FIELD]: produced }));
        controller.enqueue(event("[DONE]"));
        controller.close();
      } else {
        controller.error(new Error("connection reset by peer"));
      }
    },
    cancel(reason) {
      cancelledWith = String(reason ?? "cancelled");
    },
  });
  return new Response(readable, { headers: { "content-type": "text/event-stream", ...headers } });
}

/**
 * A runner's bake, without a model: the adapters are read where a runner's fetch would find
 * them (R2 blob by sha256, config from D1), baked with core. A real runner measures fidelity on
 * the model; this stand-in scripts it from the discarded energy (kl_mean = discarded energy,
 * top-1 agreement = 1 − it), so tests can see it passed through and stored unchanged.
 */
async function fakeBake(body: BakeRequest): Promise<Response> {
  const terms = [];
  for (const e of body.adapters) {
    const blob = await env.ADAPTERS.get(blobKey(e.sha256));
    const row = await env.DB.prepare("SELECT config_json FROM adapters WHERE id = ?").bind(e.id).first<{ config_json: string }>();
    if (!blob || !row) return Response.json({ error: { type: "adapter_unavailable", message: `no adapter ${e.id}` } }, { status: 502 });
    terms.push({ adapter: loadPeftAdapter(JSON.parse(row.config_json), new Uint8Array(await blob.arrayBuffer())), weight: e.weight });
  }
  let result;
  try {
    result = bake(terms, { strategy: body.strategy, density: body.density, rank: body.rank, seed: body.seed });
  } catch (e) {
    return Response.json({ error: { type: "invalid_request_error", message: `cannot bake: ${(e as Error).message}` } }, { status: 400 });
  }
  const files = writePeftAdapter(result.adapter, { baseModel: body.model });
  const lost = result.report.totalDiscardedEnergy;
  let bin = "";
  for (const b of files.safetensors) bin += String.fromCharCode(b);
  const answer: BakeResponse = {
    adapter_config: files.config,
    safetensors_base64: btoa(bin),
    report: {
      strategy: body.strategy,
      density: body.density ?? null,
      rank: Math.max(0, ...result.report.perModule.map((m) => m.rank)),
      seed: body.seed ?? null,
      total_discarded_energy: lost,
      per_module: result.report.perModule.map((m) => ({ module: m.module, rank: m.rank, discarded_energy: m.discardedEnergy })),
      fidelity: { probe: { sequences: 1, tokens_per_sequence: 4, seed: 0 }, positions: 4, kl_mean: lost, kl_max: lost, top1_agreement: 1 - lost },
    },
    timing_ms: { bake: 1, fidelity: 1 },
  };
  return Response.json(answer);
}

/** How long a "busy" runner's /healthz takes (between the 1 s and 2 s probe timeouts the tests set). */
export const BUSY_HEALTHZ_MS = 1_300;

/** Waits BUSY_HEALTHZ_MS, or rejects when the caller aborts first (its timeout), as a real fetch does. */
function busy(signal: AbortSignal | null): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, BUSY_HEALTHZ_MS);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

/** A fetch that never answers; it rejects only when the caller aborts it (its timeout). */
function hang(signal: AbortSignal | null): Promise<Response> {
  return new Promise<Response>((_, reject) => {
    if (!signal) return;
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason));
  });
}

/** The hanging and slow stream behaviours, built from the normal stream `events`. */
function scriptedStream(behaviour: "silent-stream" | "stall-mid-stream" | "slow-stream", events: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  if (behaviour === "silent-stream") return new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(enc.encode(": keep-alive\n\n")) });
  if (behaviour === "slow-stream") {
    return new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let waited = 0; waited < 1600; waited += 200) {
          controller.enqueue(enc.encode(": keep-alive\n\n"));
          await new Promise((r) => setTimeout(r, 200));
        }
        const reader = events.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) controller.enqueue(r.value);
        controller.close();
      },
    });
  }
  // stall-mid-stream: the first two events of the normal stream, then nothing.
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      const text = await new Response(events).text();
      for (const event of text.split("\n\n").slice(0, 2)) controller.enqueue(enc.encode(`${event}\n\n`));
    },
  });
}

/**
 * Fake runners for every test of the calling file: fresh ones installed in `beforeEach` (into the
 * one object returned, so it can be held in a `const`), every mock restored in `afterEach`.
 */
export function useFakeRunners(models?: ModelManifest[]): FakeRunners {
  const runners = {} as FakeRunners;
  beforeEach(() => {
    Object.assign(runners, installFakeRunners(models));
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  return runners;
}

/** Installs the fake runners; call restore() (or rely on vi.restoreAllMocks) afterwards. */
export function installFakeRunners(models: ModelManifest[] = [MANIFEST]): FakeRunners {
  invalidateCatalog();
  runnerHealth.reset();
  runnerLoads.reset();
  resetProbeClock();
  const realFetch = globalThis.fetch;
  const state: FakeRunners = {
    behaviour: Object.fromEntries(RUNNERS.map((r) => [r, "ok" as RunnerBehaviour])),
    loads: {},
    probes: {},
    completions: [],
    driven: [],
    bakes: [],
    restore: () => spy.mockRestore(),
  };
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init as RequestInit);
    const url = new URL(req.url);
    const runner = RUNNERS.find((r) => req.url.startsWith(r));
    if (!runner) return realFetch(input as RequestInfo, init as RequestInit);
    const behaviour = state.behaviour[runner];
    if (behaviour === "down") throw new TypeError(`fetch failed: connect ECONNREFUSED ${url.host}`);
    if (url.pathname === RUNNER_PATHS.health) state.probes[runner] = (state.probes[runner] ?? 0) + 1;
    if (behaviour === "hang") return hang((init as RequestInit | undefined)?.signal ?? null);
    if (url.pathname === RUNNER_PATHS.health) {
      if (behaviour === "busy") await busy((init as RequestInit | undefined)?.signal ?? null);
      // Unsigned, like the real runner's.
      if (behaviour === "500") return Response.json({ error: { type: "internal_error", message: "boom" } }, { status: 500 });
      const draining = behaviour === "draining";
      const health: Health = { status: draining ? "draining" : "ok", ready: !draining, models: models.map((m) => m.id), pid: 1000 + RUNNERS.indexOf(runner), load: state.loads[runner] ?? 0 };
      return Response.json(health, { status: draining ? 503 : 200 });
    }
    const bodyBytes = new Uint8Array(await req.arrayBuffer());
    const verified = await verifyRequest(SECRET, {
      method: req.method,
      pathAndQuery: url.pathname + url.search,
      body: bodyBytes,
      ...signatureHeaders((name) => req.headers.get(name)),
    });
    if (!verified.ok) return Response.json({ error: { type: "authentication_error", message: verified.reason } }, { status: 401 });
    if (behaviour === "500") return Response.json({ error: { type: "internal_error", message: "boom" } }, { status: 500 });
    if (url.pathname === RUNNER_PATHS.models) {
      return Response.json({
        object: "list",
        data: models.map((m) => ({ id: m.id, object: "model", owned_by: "loraedge", manifest: m })),
      });
    }
    if (url.pathname === RUNNER_PATHS.completions) {
      const body = JSON.parse(new TextDecoder().decode(bodyBytes)) as GenerateRequest;
      state.completions.push({ runner, body });
      if (behaviour === "429") {
        return Response.json({ error: { type: "overloaded", message: "queue full" } }, { status: 429, headers: { "retry-after": "3" } });
      }
      if (behaviour === "adapter-unavailable") {
        const path = `/internal/adapters/${body.adapters[0]?.id ?? "x"}/blob`;
        return Response.json(
          { error: { type: "adapter_unavailable", message: `the edge answered 500 for adapter ${body.adapters[0]?.id} (${path}): R2 get failed` } },
          { status: 502 },
        );
      }
      if (behaviour === "draining") {
        return Response.json({ error: { type: "service_unavailable_error", message: "the runner is shutting down" } }, { status: 503, headers: { "retry-after": "5" } });
      }
      if (behaviour === "broken-stream") {
        // Headers say 200, then the connection drops before any event.
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode("data: {\"id\""));
            c.error(new Error("connection reset"));
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      }
      if (behaviour === "400") {
        return Response.json({ error: { type: "invalid_request_error", message: "prompt too long" } }, { status: 400 });
      }
      if (behaviour === "driven") return drivenAnswer(body, state.driven);
      if (body.stream && (behaviour === "silent-stream" || behaviour === "stall-mid-stream" || behaviour === "slow-stream")) {
        return new Response(scriptedStream(behaviour, sse(body, runner)), { headers: { "content-type": "text/event-stream" } });
      }
      const load = { [LOAD_HEADER]: String(state.loads[runner] ?? 0) };
      if (body.stream) return new Response(sse(body, runner), { headers: { "content-type": "text/event-stream", ...load } });
      return Response.json(completionFor(body, runner), { headers: load });
    }
    if (url.pathname === RUNNER_BAKE_PATH) {
      const body = JSON.parse(new TextDecoder().decode(bodyBytes)) as BakeRequest;
      state.bakes.push({ runner, body });
      return fakeBake(body);
    }
    return Response.json({ error: { type: "not_found_error", message: url.pathname } }, { status: 404 });
  });
  return state;
}
