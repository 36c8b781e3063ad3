import { describe, expect, it } from "vitest";
import { assessLiveness } from "./liveness.js";

describe("assessLiveness", () => {
  it("an idle engine is live however long ago it stepped", () => {
    expect(assessLiveness({ lastStepAt: 0, busySince: null }, 3_600_000, 1_000)).toEqual({ busy: false, lastStepAgeMs: 3_600_000, noProgressMs: 0, stalled: false });
    expect(assessLiveness({ lastStepAt: null, busySince: null }, 5_000, 1_000)).toMatchObject({ lastStepAgeMs: null, stalled: false });
  });

  it("a busy engine counts from the later of its last step and the moment it became busy; stalled only beyond the limit", () => {
    // Busy since 10 s, last step an hour ago (before it went idle): counted from 10 s.
    expect(assessLiveness({ lastStepAt: 0, busySince: 10_000 }, 10_900, 1_000)).toMatchObject({ busy: true, noProgressMs: 900, stalled: false });
    expect(assessLiveness({ lastStepAt: 0, busySince: 10_000 }, 11_000, 1_000)).toMatchObject({ noProgressMs: 1_000, stalled: false });
    expect(assessLiveness({ lastStepAt: 0, busySince: 10_000 }, 11_001, 1_000)).toMatchObject({ noProgressMs: 1_001, stalled: true });
    // Steps returning while busy: counted from the last one.
    expect(assessLiveness({ lastStepAt: 20_000, busySince: 10_000 }, 20_500, 1_000)).toMatchObject({ lastStepAgeMs: 500, noProgressMs: 500, stalled: false });
    expect(assessLiveness({ lastStepAt: null, busySince: 10_000 }, 12_000, 1_000)).toMatchObject({ lastStepAgeMs: null, noProgressMs: 2_000, stalled: true });
  });

  it("a stall limit of 0 never stalls", () => {
    expect(assessLiveness({ lastStepAt: null, busySince: 0 }, 1e9, 0)).toMatchObject({ busy: true, noProgressMs: 1e9, stalled: false });
  });
});
