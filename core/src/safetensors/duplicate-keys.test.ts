import { describe, expect, it } from "vitest";
import { createRng } from "../random/xoshiro128.js";
import { findDuplicateJsonKey } from "./duplicate-keys.js";

/** A JSON value kept as ordered [key, value] pairs so duplicates can exist. */
type J = { obj: Array<[string, J]> } | { arr: J[] } | { lit: string };

function serialize(v: J): string {
  if ("lit" in v) return v.lit;
  if ("arr" in v) return `[${v.arr.map(serialize).join(", ")}]`;
  return `{${v.obj.map(([k, x]) => `${JSON.stringify(k)} : ${serialize(x)}`).join(",")}}`;
}

/** Naive reference: does any object, at any depth, repeat a key? */
function hasDuplicate(v: J): boolean {
  if ("lit" in v) return false;
  if ("arr" in v) return v.arr.some(hasDuplicate);
  const keys = v.obj.map(([k]) => k);
  return new Set(keys).size !== keys.length || v.obj.some(([, x]) => hasDuplicate(x));
}

describe("findDuplicateJsonKey", () => {
  it("agrees with a structural reference on random nested JSON with tricky strings", () => {
    const rng = createRng(31);
    const pick = <T,>(xs: T[]) => xs[Math.floor(rng.nextFloat() * xs.length)];
    const keyPool = ["a", "b", 'q"uote', "back\\slash", "{brace}", "[x]", "com,ma", "colon:", "ünï", "\u0000ctl", "a\nb"];
    const literals = ['"s"', '"}"', '"\\"]"', "1", "-2.5e3", "true", "null", '"{\\"k\\":1}"'];
    const gen = (depth: number): J => {
      const r = rng.nextFloat();
      if (depth > 3 || r < 0.3) return { lit: pick(literals) };
      if (r < 0.5) return { arr: Array.from({ length: Math.floor(rng.nextFloat() * 4) }, () => gen(depth + 1)) };
      return { obj: Array.from({ length: Math.floor(rng.nextFloat() * 5) }, () => [pick(keyPool), gen(depth + 1)] as [string, J]) };
    };
    let dups = 0;
    for (let t = 0; t < 2000; t++) {
      const v: J = { obj: Array.from({ length: 1 + Math.floor(rng.nextFloat() * 4) }, () => [pick(keyPool), gen(1)] as [string, J]) };
      const text = serialize(v);
      JSON.parse(text); // valid JSON by construction
      const want = hasDuplicate(v);
      if (want) dups++;
      expect(findDuplicateJsonKey(text) !== null, text).toBe(want);
    }
    expect(dups).toBeGreaterThan(200); // both outcomes exercised
  });

  it("names the key and the enclosing entry", () => {
    expect(findDuplicateJsonKey('{"x":{"a":1,"b":2,"a":3}}')).toEqual({ key: "a", path: "x" });
    expect(findDuplicateJsonKey('{"x":1,"\\u0078":2}')).toEqual({ key: "x", path: "" });
    expect(findDuplicateJsonKey('{"x":[{"a":1},{"a":2}]}')).toBeNull();
  });
});
