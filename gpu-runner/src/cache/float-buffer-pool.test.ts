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

  it("keeps free buffers within capBytes (asked at every give): the oldest make room, an array over the cap by itself is dropped", () => {
    let cap = 100;
    const pool = new FloatBufferPool(() => cap);
    const arrays = [new Float32Array(10), new Float32Array(10), new Float32Array(10)]; // 40 bytes each
    pool.give(arrays);
    expect(pool.stats()).toMatchObject({ freeBytes: 80, freeBuffers: 2 });
    expect(pool.take(10)).toBe(arrays[2]); // the newest kept; arrays[0], the oldest, made room for it
    expect(pool.take(10)).toBe(arrays[1]);
    expect(pool.take(10)).not.toBe(arrays[0]);
    pool.give([arrays[1], arrays[2]]);
    cap = 0;
    pool.give([new Float32Array(1)]);
    expect(pool.stats().freeBuffers).toBe(2);
    pool.clear();
    expect(pool.stats()).toMatchObject({ freeBytes: 0, freeBuffers: 0 });
    expect(pool.take(10)).not.toBe(arrays[0]);
  });

  it("drops the oldest free buffers, of any length, to keep a newer one within the cap", () => {
    const pool = new FloatBufferPool(() => 100);
    const [old8, mid4, new8] = [new Float32Array(8), new Float32Array(4), new Float32Array(8)]; // 32, 16, 32 bytes
    pool.give([old8, mid4, new8]);
    expect(pool.stats()).toMatchObject({ freeBytes: 80, freeBuffers: 3 });
    const big = new Float32Array(10); // 40 bytes: 80 + 40 > 100, so old8 (the oldest) goes: 48 + 40 = 88
    pool.give([big]);
    expect(pool.stats()).toMatchObject({ freeBytes: 88, freeBuffers: 3 });
    expect(pool.take(8)).toBe(new8);
    expect(pool.take(8)).not.toBe(old8); // dropped
    pool.give([new Float32Array(25)]); // exactly the cap: every other free buffer goes
    expect(pool.stats()).toMatchObject({ freeBytes: 100, freeBuffers: 1 });
    pool.give([new Float32Array(26)]); // over the cap by itself: dropped, the free one stays
    expect(pool.stats()).toMatchObject({ freeBytes: 100, freeBuffers: 1 });
  });
});
