// Pure routing pieces: rendezvous ranking, the health tracker, and the SSE pass-through.
import { describe, expect, it } from "vitest";
import { mixKey } from "#core/wire/mix-key";
import { HealthTracker } from "../../workers/src/runners/health.js";
import { mixRoutingKey, rendezvousRank, rendezvousScore } from "../../workers/src/runners/rendezvous.js";
import { passThroughSse } from "../../workers/src/inference/sse.js";

const RUNNERS = ["http://r1", "http://r2", "http://r3", "http://r4"];

/** Plain reference: every runner scored, sorted by score descending (ties by name). */
function referenceRank(key: string, runners: string[]): string[] {
  const scored = runners.map((r) => [r, rendezvousScore(key, r)] as const);
  const out: string[] = [];
  const left = [...scored];
  while (left.length) {
    let best = 0;
    for (let i = 1; i < left.length; i++) {
      const [r, s] = left[i]!;
      const [br, bs] = left[best]!;
      if (s > bs || (s === bs && r < br)) best = i;
    }
    out.push(left.splice(best, 1)[0]![0]);
  }
  return out;
}

describe("rendezvous hashing", () => {
  it("equals the plain reference ranking and is a permutation", () => {
    for (let i = 0; i < 200; i++) {
      const key = `m|ad_${i}:1`;
      const rank = rendezvousRank(key, RUNNERS);
      expect(rank).toEqual(referenceRank(key, RUNNERS));
      expect([...rank].sort()).toEqual(RUNNERS);
    }
  });

  it("spreads keys over runners and moves only the removed runner's keys", () => {
    const counts = new Map<string, number>();
    let moved = 0;
    for (let i = 0; i < 2000; i++) {
      const key = mixRoutingKey("m", mixKey([{ id: `ad_${i}`, sha256: "0".repeat(64), weight: 1 }]));
      const owner = rendezvousRank(key, RUNNERS)[0]!;
      counts.set(owner, (counts.get(owner) ?? 0) + 1);
      const without = rendezvousRank(key, RUNNERS.filter((r) => r !== "http://r2"))[0]!;
      if (owner !== "http://r2" && without !== owner) moved++;
    }
    for (const r of RUNNERS) expect(counts.get(r)!).toBeGreaterThan(400); // 500 expected each
    expect(moved).toBe(0);
  });

  it("keys a mix by model and core's canonical mix key: sorted (id, sha256, weight), repeats merged, ignoring zero weights", () => {
    const sha = (c: string) => c.repeat(64);
    const e = (id: string, weight: number) => ({ id, sha256: sha(id), weight });
    const k1 = mixRoutingKey("m", mixKey([e("b", 1), e("a", 0.5), e("c", 0)]));
    const k2 = mixRoutingKey("m", mixKey([e("a", 0.5), e("b", 1)]));
    expect(k1).toBe(k2);
    expect(mixRoutingKey("m", mixKey([e("a", 0.25), e("b", 1), e("a", 0.25)]))).toBe(k2);
    expect(mixRoutingKey("m", mixKey([]))).not.toBe(mixRoutingKey("n", mixKey([])));
    expect(mixRoutingKey("m", mixKey([e("a", 1)]))).not.toBe(mixRoutingKey("m", mixKey([e("a", 2)])));
    expect(mixRoutingKey("m", mixKey([e("a", 1)]))).not.toBe(mixRoutingKey("m", mixKey([{ id: "a", sha256: sha("f"), weight: 1 }])));
  });
});

describe("health tracker", () => {
  it("a success observed from before the last failure (a probe in flight) does not clear it", () => {
    const h = new HealthTracker();
    const t0 = 2_000_000;
    h.markFailure("http://r1", "timeout", t0 + 10);
    h.markSuccess("http://r1", t0 + 20, t0); // probe started at t0, before the failure
    expect(h.isHealthy("http://r1", t0 + 21)).toBe(false);
    h.markSuccess("http://r1", t0 + 30, t0 + 15); // probe started after it
    expect(h.isHealthy("http://r1", t0 + 31)).toBe(true);
    expect(h.get("http://r1").lastOkAt).toBe(t0 + 30);
  });

  it("backs off exponentially, orders healthy runners first, and recovers on success", () => {
    const h = new HealthTracker();
    const t0 = 1_000_000;
    h.markFailure("http://r1", "boom", t0);
    expect(h.isHealthy("http://r1", t0 + 999)).toBe(false);
    expect(h.isHealthy("http://r1", t0 + 1000)).toBe(true);
    h.markFailure("http://r1", "boom", t0);
    expect(h.isHealthy("http://r1", t0 + 1999)).toBe(false);
    for (let i = 0; i < 10; i++) h.markFailure("http://r1", "boom", t0);
    expect(h.isHealthy("http://r1", t0 + 30_000)).toBe(true); // capped at 30 s
    h.markFailure("http://r1", "boom", t0);
    expect(h.order(RUNNERS, t0 + 1)).toEqual(["http://r2", "http://r3", "http://r4", "http://r1"]);
    h.markSuccess("http://r1", t0 + 2);
    expect(h.order(RUNNERS, t0 + 2)).toEqual(RUNNERS);
  });
});

function streamOf(parts: string[], error?: Error): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < parts.length) c.enqueue(enc.encode(parts[i++]!));
      else if (error) c.error(error);
      else c.close();
    },
  });
}

const chunk = (text: string, extra: object = {}) =>
  JSON.stringify({ id: "c", object: "text_completion", created: 1, model: "m", choices: [{ index: 0, text, finish_reason: null, logprobs: null }], ...extra });

describe("SSE pass-through", () => {
  it("re-frames events split across reads, keeps one [DONE], and reports usage before it", async () => {
    const raw = `data: ${chunk("Hel")}\n\ndata: ${chunk("lo")}\r\n\r\ndata: ${chunk("", { usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 } })}\n\ndata: [DONE]\n\n`;
    const parts = [raw.slice(0, 7), raw.slice(7, 50), raw.slice(50, 51), raw.slice(51)];
    const seen: unknown[] = [];
    const text = await new Response(passThroughSse(streamOf(parts), { onDone: async (o) => void seen.push(o) })).text();
    const events = text.split("\n\n").filter(Boolean);
    expect(events).toHaveLength(4);
    expect(events.map((e) => e.slice(6)).slice(0, 2).map((e) => JSON.parse(e).choices[0].text)).toEqual(["Hel", "lo"]);
    expect(events[3]).toBe("data: [DONE]");
    expect(seen).toEqual([{ usage: { prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 }, textChunks: 2, sampledTokens: null, error: null }]);
  });

  it("adds [DONE] to a stream that ended without it, and an error event to a broken one", async () => {
    const ended = await new Response(passThroughSse(streamOf([`data: ${chunk("x")}\n\n`]))).text();
    expect(ended.endsWith("data: [DONE]\n\n")).toBe(true);
    // Closed without the runner's own [DONE] (a killed process): an error event says so.
    expect(JSON.parse(ended.split("\n\n")[1]!.slice(6)).error.type).toBe("runner_error");
    const complete = await new Response(passThroughSse(streamOf([`data: ${chunk("x")}\n\ndata: [DONE]\n\n`]))).text();
    expect(complete).not.toContain("error");
    const broken = await new Response(passThroughSse(streamOf([`data: ${chunk("x")}\n\n`], new Error("reset")))).text();
    const events = broken.split("\n\n").filter(Boolean);
    expect(JSON.parse(events[1]!.slice(6)).error.message).toMatch(/stream broke before it finished/);
    expect(JSON.parse(events[1]!.slice(6)).error.message).not.toContain("reset");
    expect(events[2]).toBe("data: [DONE]");
  });

  it("maps events (chat chunks) and passes error events unmapped", async () => {
    const s = passThroughSse(streamOf([`data: ${chunk("a")}\n\n`, `data: {"error":{"type":"x","message":"late"}}\n\n`]), {
      map: (c) => ({ mapped: c.choices[0]!.text }),
    });
    const events = (await new Response(s).text()).split("\n\n").filter(Boolean);
    expect(events).toEqual(['data: {"mapped":"a"}', 'data: {"error":{"type":"x","message":"late"}}', "data: [DONE]"]);
  });
});
