/**
 * What ran between two tokens of a stream: a timeline of the engine's model steps (decode,
 * prefill, or mixed: decode rows and prompt chunks in one run), the LoRA packing inside them,
 * mix compositions and garbage collections, and a breakdown of each long inter-token gap into
 * those parts (the rest is the event loop: sampling, detokenising, callbacks, scheduling).
 */
import { PerformanceObserver } from "node:perf_hooks";
import type { ModelEngine } from "../../gpu-runner/src/engine/index.js";
import type { BaseModel } from "../../gpu-runner/src/model/index.js";

export type TimelineKind = "decode" | "prefill" | "mixed" | "compose" | "gc";

export interface TimelineEvent {
  kind: TimelineKind;
  start: number;
  end: number;
  /** Steps: rows in the run, prompt tokens in it, LoRA packing ms inside it and the floats it wrote. */
  rows?: number;
  promptTokens?: number;
  packMs?: number;
  packFloats?: number;
}

/**
 * One long gap and what overlapped it (ms of each kind, clipped to the gap; `other` = not covered by any;
 * `pack` = the LoRA packing inside the overlapping steps, pro rata, also counted in their kind).
 */
export interface GapBreakdown {
  ms: number;
  parts: Record<TimelineKind | "other" | "pack", number>;
  steps: number;
}

const emptyParts = (): GapBreakdown["parts"] => ({ decode: 0, prefill: 0, mixed: 0, compose: 0, gc: 0, other: 0, pack: 0 });

export interface Timeline {
  events: TimelineEvent[];
  /** Stops recording and restores what it wrapped. */
  stop(): void;
}

/** Records model steps (wrapping `model.step`), compositions (wrapping `engine.mixes.acquire`) and GC. */
export function recordTimeline(engine: ModelEngine, model: BaseModel): Timeline {
  const events: TimelineEvent[] = [];
  const step = model.step;
  model.step = async function (this: BaseModel, rows, options) {
    const start = performance.now();
    const packBefore = model.timings?.loraPackMs ?? 0;
    const floatsBefore = model.timings?.loraPackFloats ?? 0;
    try {
      return await step.call(this, rows, options);
    } finally {
      const prompt = rows.filter((r) => r.cache === null || r.tokens.length > 1);
      const decoding = rows.length - prompt.length;
      events.push({
        kind: prompt.length === 0 ? "decode" : decoding === 0 ? "prefill" : "mixed",
        start,
        end: performance.now(),
        rows: rows.length,
        promptTokens: prompt.reduce((n, r) => n + r.tokens.length, 0),
        packMs: (model.timings?.loraPackMs ?? 0) - packBefore,
        packFloats: (model.timings?.loraPackFloats ?? 0) - floatsBefore,
      });
    }
  };
  const acquire = engine.mixes.acquire;
  engine.mixes.acquire = function (this: typeof engine.mixes, key, compose) {
    return acquire.call(this, key, (alloc) => {
      const start = performance.now();
      try {
        return compose(alloc);
      } finally {
        events.push({ kind: "compose", start, end: performance.now() });
      }
    });
  };
  // The scheduler names each step's kind right after the run (observer.onStep): prefill steps whose rows
  // all take one last prompt token look like decode rows to the wrapper above.
  const onStep = engine.merges.onStep;
  engine.merges.onStep = function (this: typeof engine.merges, o) {
    const last = events.findLast((e) => e.kind === "decode" || e.kind === "prefill" || e.kind === "mixed");
    if (last && o.kind === "prefill" && last.kind === "decode") last.kind = "prefill";
    return onStep.call(this, o);
  };
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) events.push({ kind: "gc", start: e.startTime, end: e.startTime + e.duration });
  });
  gc.observe({ entryTypes: ["gc"] });
  return {
    events,
    stop() {
      gc.disconnect();
      model.step = step;
      engine.mixes.acquire = acquire;
      engine.merges.onStep = onStep;
    },
  };
}

/**
 * Splits the gap [from, to] into the time each kind of event covered (kinds overlapping each other,
 * e.g. GC inside a step, count for each) and `other`: the time no event covered.
 */
export function breakDownGap(events: readonly TimelineEvent[], from: number, to: number): GapBreakdown {
  const parts = emptyParts();
  const covered: Array<[number, number]> = [];
  let steps = 0;
  for (const e of events) {
    const a = Math.max(from, e.start);
    const b = Math.min(to, e.end);
    if (b <= a) continue;
    parts[e.kind] += b - a;
    if (e.kind === "decode" || e.kind === "prefill" || e.kind === "mixed") {
      steps++;
      parts.pack += ((e.packMs ?? 0) * (b - a)) / (e.end - e.start);
    }
    covered.push([a, b]);
  }
  covered.sort((x, y) => x[0] - y[0]);
  let union = 0;
  let reach = from;
  for (const [a, b] of covered) {
    if (b <= reach) continue;
    union += b - Math.max(a, reach);
    reach = b;
  }
  parts.other = to - from - union;
  return { ms: to - from, parts, steps };
}

/** Mean breakdown of the given gaps (ms per gap). */
export function meanBreakdown(gaps: readonly GapBreakdown[]): GapBreakdown {
  const mean: GapBreakdown = { ms: 0, parts: emptyParts(), steps: 0 };
  if (gaps.length === 0) return mean;
  for (const g of gaps) {
    mean.ms += g.ms / gaps.length;
    mean.steps += g.steps / gaps.length;
    for (const k of Object.keys(mean.parts) as (keyof GapBreakdown["parts"])[]) mean.parts[k] += g.parts[k] / gaps.length;
  }
  return mean;
}
