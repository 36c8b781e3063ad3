/**
 * Where an engine run's wall time goes: mix compositions (the compose callback of the engine's
 * composed-mix pool), model steps split into prefill (a row with prompt tokens) and decode (every
 * row one token), the LoRA packing inside the steps (the model's own `timings`), and the rest
 * (event loop: admission, sampling, detokenising, scheduling, idle waits).
 */
import type { ModelEngine } from "../../gpu-runner/src/engine/index.js";
import type { BaseModel } from "../../gpu-runner/src/model/index.js";

export interface StepTotals {
  steps: number;
  ms: number;
  /** Σ rows over the steps (rows ÷ steps = mean batch). */
  rows: number;
}

export interface EngineBreakdown {
  composeMs: number;
  composes: number;
  /** LoRA input packing inside the steps (part of prefill.ms + decode.ms). */
  packMs: number;
  prefill: StepTotals;
  decode: StepTotals;
}

export interface BreakdownRecorder {
  /** What was recorded since the last take (and starts afresh). */
  take(): EngineBreakdown;
  /** Restores what it wrapped. */
  stop(): void;
}

/** Wraps `model.step` and `engine.mixes.acquire` (the compose callback) to add up their time. */
export function recordBreakdown(engine: ModelEngine, model: BaseModel): BreakdownRecorder {
  const empty = (): EngineBreakdown => ({ composeMs: 0, composes: 0, packMs: 0, prefill: { steps: 0, ms: 0, rows: 0 }, decode: { steps: 0, ms: 0, rows: 0 } });
  let current = empty();
  let packAtTake = model.timings?.loraPackMs ?? 0;
  const step = model.step;
  model.step = async function (this: BaseModel, rows, options) {
    const start = performance.now();
    try {
      return await step.call(this, rows, options);
    } finally {
      const kind = rows.every((r) => r.cache !== null && r.tokens.length === 1) ? current.decode : current.prefill;
      kind.steps++;
      kind.ms += performance.now() - start;
      kind.rows += rows.length;
    }
  };
  const acquire = engine.mixes.acquire;
  engine.mixes.acquire = function (this: typeof engine.mixes, key, compose) {
    return acquire.call(this, key, () => {
      const start = performance.now();
      try {
        return compose();
      } finally {
        current.composeMs += performance.now() - start;
        current.composes++;
      }
    });
  };
  return {
    take() {
      const taken = current;
      const pack = model.timings?.loraPackMs ?? 0;
      taken.packMs = pack - packAtTake;
      packAtTake = pack;
      current = empty();
      return taken;
    },
    stop() {
      model.step = step;
      engine.mixes.acquire = acquire;
    },
  };
}
