/**
 * Engine liveness: is the scheduler making progress on the work it holds?
 *
 * A runner whose engine is stuck at the JS level (a step promise that never settles: a lost
 * callback, a deadlocked await; a scheduler that stopped stepping) while Node's event loop still
 * runs must not look alive: its `/healthz` would say ready and timer-driven SSE keep-alives would
 * hold the edge's stream idle timeout off forever. Liveness is therefore read from the scheduler's
 * steps, not from a timer.
 *
 * Not covered here: a hung ONNX Runtime run. onnxruntime-node's `run` is a blocking native call, so
 * a run that never returns freezes the whole event loop (no /healthz answer, no keep-alives); the
 * edge sees that like a stopped process and handles it with its probe, headers and idle timeouts.
 *
 * Semantics: an engine with no work (nothing queued or running) is live, however long ago it last
 * stepped. An engine with work is stalled when no model step has returned for more than the stall
 * limit, counting from the later of its last returned step and the moment it became busy (so a
 * request arriving at an engine idle for an hour is not stalled at once). A step that failed
 * (threw) returned: that is progress. A stall limit of 0 turns detection off.
 */

/** What the scheduler records for liveness (milliseconds on the scheduler's clock). */
export interface SchedulerProgress {
  /** When the last model step returned (or threw); null before the first. */
  lastStepAt: number | null;
  /** Since when the scheduler has held work without ever being idle in between; null when idle. */
  busySince: number | null;
}

export interface Liveness {
  /** Requests queued or running. */
  busy: boolean;
  /** Milliseconds since the last model step returned; null before the first step. */
  lastStepAgeMs: number | null;
  /** Milliseconds the engine has held work without a step returning (0 when idle). */
  noProgressMs: number;
  /** Busy, and no progress for longer than the stall limit. */
  stalled: boolean;
}

/**
 * Default stall limit (ms). The longest legitimate step measured on the bench model
 * (`loraedge-small`, 2 shared CPU cores, 64 streams with distinct mixes, 512-token prefill
 * steps) is far below it; see gpu-runner/README.md (RUNNER_STALL_LIMIT_MS).
 */
export const DEFAULT_STALL_LIMIT_MS = 30_000;

/** Liveness at `now` given what the scheduler recorded and the stall limit (0: never stalled). */
export function assessLiveness(progress: SchedulerProgress, now: number, stallLimitMs: number): Liveness {
  const lastStepAgeMs = progress.lastStepAt === null ? null : Math.max(0, now - progress.lastStepAt);
  if (progress.busySince === null) return { busy: false, lastStepAgeMs, noProgressMs: 0, stalled: false };
  const since = Math.max(progress.busySince, progress.lastStepAt ?? Number.NEGATIVE_INFINITY);
  const noProgressMs = Math.max(0, now - since);
  return { busy: true, lastStepAgeMs, noProgressMs, stalled: stallLimitMs > 0 && noProgressMs > stallLimitMs };
}
