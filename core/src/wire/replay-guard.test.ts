import { describe, expect, it } from "vitest";
import { ReplayGuard } from "./replay-guard.js";

describe("ReplayGuard", () => {
  it("accepts a signature once while it is live, case-insensitively", () => {
    const g = new ReplayGuard(10);
    expect(g.claim("AB", 110, 100)).toBe("ok");
    expect(g.claim("ab", 110, 105)).toBe("replayed");
    expect(g.claim("cd", 110, 105)).toBe("ok");
  });

  it("forgets signatures once they expire (memory stays bounded by the live ones)", () => {
    const g = new ReplayGuard(10);
    for (let i = 0; i < 5; i++) expect(g.claim(`s${i}`, 100 + i, 90)).toBe("ok");
    expect(g.size).toBe(5);
    expect(g.claim("t", 200, 103)).toBe("ok"); // s0..s3 expired (expiry ≤ now) and dropped
    expect(g.size).toBe(2); // s4 and t
  });

  it("when full of live signatures, refuses new ones instead of evicting a live one", () => {
    const g = new ReplayGuard(2);
    expect(g.claim("a", 200, 100)).toBe("ok");
    expect(g.claim("b", 150, 100)).toBe("ok");
    expect(g.claim("c", 200, 100)).toBe("full");
    expect(g.claim("a", 200, 100)).toBe("replayed");
    // Once one expires (even out of insertion order) there is room again.
    expect(g.claim("c", 200, 160)).toBe("ok");
    expect(g.claim("a", 200, 160)).toBe("replayed");
  });
});
