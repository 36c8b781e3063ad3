import { describe, expect, it } from "vitest";
import { FloatBufferPool } from "./float-buffer-pool.js";

describe("FloatBufferPool", () => {
  it("hands a given-back buffer out again for the same length only, most recent first; fresh otherwise", () => {
    const pool = new FloatBufferPool(() => Infinity);
    const a = pool.take(8);
    const b = pool.take(8);
    const c = pool.take(4);
    expect([a.length, b.length, c.length]).toEqual([8, 8, 4]);
    pool.give([a, b, c]);
    expect(pool.stats()).toMatchObject({ freeBytes: 80, freeBuffers: 3, reused: 0, fresh: 3 });
    expect(pool.take(8)).toBe(b);
    expect(pool.take(8)).toBe(a);
    const d = pool.take(8);
    expect(d).not.toBe(a);
    expect(d).not.toBe(b);
    expect(pool.take(16).length).toBe(16);
    expect(pool.take(4)).toBe(c);
    expect(pool.stats()).toMatchObject({ freeBytes: 0, freeBuffers: 0, reused: 3, fresh: 5 });
  });

  it("fresh buffers come from the given allocator", () => {
    const made: Float32Array[] = [];
    const pool = new FloatBufferPool(() => Infinity, (length) => {
      made.push(new Float32Array(length).fill(7));
      return made.at(-1)!;
    });
    const a = pool.take(3);
    expect(a).toBe(made[0]);
    pool.give([a]);
    expect(pool.take(3)).toBe(a);
    expect(made).toHaveLength(1);
  });

  it("keeps free buffers within capBytes (asked at every give) and drops the rest", () => {
    let cap = 100;
    const pool = new FloatBufferPool(() => cap);
    const arrays = [new Float32Array(10), new Float32Array(10), new Float32Array(10)]; // 40 bytes each
    pool.give(arrays);
    expect(pool.stats()).toMatchObject({ freeBytes: 80, freeBuffers: 2 });
    cap = 0;
    pool.give([new Float32Array(1)]);
    expect(pool.stats().freeBuffers).toBe(2);
    pool.clear();
    expect(pool.stats()).toMatchObject({ freeBytes: 0, freeBuffers: 0 });
    expect(pool.take(10)).not.toBe(arrays[0]);
  });
});
