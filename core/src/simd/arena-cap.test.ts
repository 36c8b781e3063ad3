import { describe, expect, it } from "vitest";
import { kernelFloatArena, MAX_LIVE_ARENAS, simdKernelsAvailable } from "./kernels.js";

// Its own file: the arenas it holds count against the cap of every later test in the same process.
describe("kernelFloatArena address-space cap", () => {
  it.skipIf(!simdKernelsAvailable())("answers null while MAX_LIVE_ARENAS arenas are live (callers then allocate plain arrays)", () => {
    const held: NonNullable<ReturnType<typeof kernelFloatArena>>[] = [];
    for (let i = 0; i < MAX_LIVE_ARENAS + 5; i++) {
      const arena = kernelFloatArena(16);
      if (!arena) break;
      held.push(arena);
    }
    expect(held.length).toBe(MAX_LIVE_ARENAS);
    expect(kernelFloatArena(16)).toBeNull();
    expect(held.every((alloc) => alloc(16)!.length === 16)).toBe(true);
  });
});
