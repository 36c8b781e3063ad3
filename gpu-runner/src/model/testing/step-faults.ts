/**
 * Test support: faults of a real model's step that cannot be produced on purpose with ONNX Runtime.
 * Replaces `variant.step` with a wrapper around the real one; `restore()` puts the real one back.
 *
 * - `hangAfter`: a step whose promise never settles while the event loop keeps running (a lost
 *   callback, a deadlocked await) — the JS-level hang that engine liveness detects. It is NOT a hung
 *   ONNX Runtime run: onnxruntime-node's `run` is a blocking native call, so a run that never returns
 *   freezes the whole event loop (no /healthz, no keep-alives), which the edge sees like a stopped process.
 * - `slowBy`: a step that blocks the thread for its duration before running, as a real (long) ORT run
 *   does: nothing else in the process runs during it, only between steps.
 */
import type { ModelVariant } from "../types.js";

export interface StepFaults {
  /** The next `steps` steps run; the one after them (and every later one) waits until `release()`. */
  hangAfter(steps: number): void;
  /** Lets the held steps (and every later one) run. */
  release(): void;
  /** Every step blocks the thread for `ms` before running (0: off): slow but progressing, like a long ORT run. */
  slowBy(ms: number): void;
  /** Steps that started (held ones included). */
  readonly started: number;
  restore(): void;
}

/** Blocks this thread (event loop included) for `ms`, as a synchronous native call does. */
function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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
    if (delayMs > 0) blockThread(delayMs);
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
