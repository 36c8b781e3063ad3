import { describe, expect, it } from "vitest";
import { StopMatcher } from "./stop-matcher.js";

function run(stops: string[], pieces: string[]) {
  const m = new StopMatcher(stops);
  let out = "";
  for (const p of pieces) {
    const r = m.push(p);
    out += r.emit;
    if (r.stopped) return { out, stopped: true };
  }
  return { out: out + m.flush(), stopped: false };
}

describe("StopMatcher", () => {
  it("passes text through without stop strings", () => {
    expect(run([], ["ab", "c"])).toEqual({ out: "abc", stopped: false });
  });

  it("cuts before a stop string split across pieces", () => {
    expect(run(["END"], ["hello E", "N", "D and more"])).toEqual({ out: "hello ", stopped: true });
  });

  it("holds back a possible prefix, releases it when it turns out not to match", () => {
    const m = new StopMatcher(["\n\n"]);
    expect(m.push("a\n")).toEqual({ emit: "a", stopped: false });
    expect(m.push("b")).toEqual({ emit: "\nb", stopped: false });
    expect(m.push("\n")).toEqual({ emit: "", stopped: false });
    expect(m.flush()).toBe("\n");
  });

  it("picks the earliest of several stop strings", () => {
    expect(run(["cd", "b"], ["abcd"])).toEqual({ out: "a", stopped: true });
  });
});
