/**
 * Test support: faults of a real model's step that cannot be produced on purpose with ONNX Runtime —
 * a step that never returns (a hung run) and a step that is merely slow. Replaces `variant.step`
 * with a wrapper around the real one; `restore()` puts the real one back.
 */
import type { ModelVariant } from "../types.js";

export interface StepFaults {
  /** The next `steps` steps run; the one after them (and every later one) waits until `release()`. */
  hangAfter(steps: number): void;
  /** Lets the held steps (and every later one) run. */
  release(): void;
  /** Every step waits `ms` before running (0: off): slow but progressing. */
  slowBy(ms: number): void;
  /** Steps that started (held ones included). */
  readonly started: number;
  restore(): void;
}

export function stepFaults(variant: ModelVariant): StepFaults {
  const own = Object.prototype.hasOwnProperty.call(variant, "step");
  const real = variant.step;
  let stepsLeft: number | null = null;
  let gate: { promise: Promise<void>; resolve: () => void } | null = null;
  let delayMs = 0;
  let started = 0;
  variant.step = async function faultyStep(rows, options) {
    started++;
    if (stepsLeft !== null && stepsLeft-- <= 0 && gate) await gate.promise;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    return real.call(variant, rows, options);
  };
  return {
    hangAfter(steps) {
      gate?.resolve();
      stepsLeft = steps;
      let resolve!: () => void;
      gate = { promise: new Promise<void>((r) => (resolve = r)), resolve };
    },
    release() {
      stepsLeft = null;
      gate?.resolve();
      gate = null;
    },
    slowBy(ms) {
      delayMs = ms;
    },
    get started() {
      return started;
    },
    restore() {
      this.release();
      if (own) variant.step = real;
      else delete (variant as { step?: unknown }).step;
    },
  };
}
