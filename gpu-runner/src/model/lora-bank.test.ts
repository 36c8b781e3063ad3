import { describe, expect, it } from "vitest";
import type { ComposedModule } from "#core/lora/types";
import { copyColumns, copyColumnsPadded, copyFloatPairs, LoraChunkBank, SPARSE_MS, SPARSE_STEPS, type ChunkFeeds, type FedRow } from "./lora-bank.js";
import { packChunks } from "./step-batch.js";
import { randomMix, seededRandom } from "./testing/random-mix.js";

const I = 5;
const O = 3;
const module = (rank: number, seed: number): ComposedModule => randomMix([{ module: "m", in: I, out: O }], () => rank, seed).modules.get("m")!;

/** Per batch row: Σ over its chunks of (x·at[n])·bt[n] (plain loops), x fixed. */
function rowProducts(f: ChunkFeeds, batch: number, x: Float32Array): Float64Array {
  const [N, , K] = f.at.dims as number[];
  const at = f.at.data as Float32Array;
  const bt = f.bt.data as Float32Array;
  const rows = Array.from(f.rows.data as BigInt64Array, Number);
  expect(rows.length).toBe(N);
  const y = new Float64Array(batch * O);
  for (let n = 0; n < N!; n++) {
    for (let c = 0; c < K!; c++) {
      let xa = 0;
      for (let k = 0; k < I; k++) xa += x[k]! * at[(n * I + k) * K! + c]!;
      for (let o = 0; o < O; o++) y[rows[n]! * O + o] += xa * bt[(n * K! + c) * O + o]!;
    }
  }
  return y;
}

/** The same for the rows' own factors: Σ (x·m.at)·m.bt. */
function wantProducts(fed: readonly FedRow[], batch: number, x: Float32Array): Float64Array {
  const y = new Float64Array(batch * O);
  for (const { row, m } of fed) {
    for (let c = 0; c < m.rank; c++) {
      let xa = 0;
      for (let k = 0; k < I; k++) xa += x[k]! * m.at[k * m.rank + c]!;
      for (let o = 0; o < O; o++) y[row * O + o] += xa * m.bt[c * O + o]!;
    }
  }
  return y;
}

describe("resident per-row LoRA chunks (LoraChunkBank)", () => {
  it("rows joining, leaving, shifting, repeating and changing the best K: every step equals the reference packing and the rows' own products", () => {
    const pool = [3, 8, 8, 16, 5, 24, 8, 2, 40, 8].map((r, i) => module(r, 100 + i));
    const bank = new LoraChunkBank();
    const rand = seededRandom(11);
    let live: ComposedModule[] = [pool[0]!, pool[1]!, pool[2]!];
    for (let step = 0; step < 60; step++) {
      // Churn: a row leaves (from anywhere), one or two join (sometimes a module already in the batch).
      if (live.length > 1 && rand() < 0.5) live.splice(Math.floor(rand() * live.length), 1);
      if (rand() < 0.6) live.push(pool[Math.floor(rand() * pool.length)]!);
      if (step === 30) live = []; // everything leaves: N = 0
      // Base / shared rows (not fed) between the fed ones.
      const batch = live.length + 2;
      const fed: FedRow[] = live.map((m, i) => ({ row: i + (i >= 1 ? 1 : 0), m }));
      const x = Float32Array.from({ length: I }, () => rand() * 2 - 1);
      const got = bank.feed("m", fed, I, O);
      const ref = packChunks(fed, I, O);
      const want = wantProducts(fed, batch, x);
      const a = rowProducts(got, batch, x);
      const b = rowProducts(ref, batch, x);
      for (let j = 0; j < want.length; j++) {
        expect(a[j], `step ${step} value ${j}`).toBeCloseTo(want[j]!, 5);
        expect(b[j]).toBeCloseTo(want[j]!, 5);
      }
      // No chunk of a row that is not fed.
      const fedRows = new Set(fed.map((f) => f.row));
      for (const r of got.rows.data as BigInt64Array) expect(fedRows.has(Number(r))).toBe(true);
      if (fed.length === 0) expect(got.at.dims).toEqual([0, I, 0]);
    }
  });

  it("a steady batch copies nothing; a join copies only its own chunks; a leave moves at most the freed chunks", () => {
    const bank = new LoraChunkBank();
    const mods = Array.from({ length: 6 }, (_, i) => module(8, 200 + i));
    const fedOf = (ms: ComposedModule[]) => ms.map((m, row) => ({ row, m }));
    bank.feed("m", fedOf(mods.slice(0, 5)), I, O);
    const chunk = 8 * (I + O); // K = 8: one chunk per module
    let before = bank.copiedFloats;
    bank.feed("m", fedOf(mods.slice(0, 5)), I, O);
    expect(bank.copiedFloats - before).toBe(0);
    before = bank.copiedFloats;
    bank.feed("m", fedOf(mods.slice(0, 6)), I, O); // join: capacity 8 holds it
    expect(bank.copiedFloats - before).toBe(chunk);
    before = bank.copiedFloats;
    const left = [mods[0]!, mods[2]!, mods[3]!, mods[4]!, mods[5]!]; // row 1 leaves: the last chunk moves into its slot
    const f = bank.feed("m", fedOf(left), I, O);
    expect(bank.copiedFloats - before).toBe(chunk);
    expect(Array.from(f.rows.data as BigInt64Array, Number).sort()).toEqual([0, 1, 2, 3, 4]);
  });

  it("a row leaving and another joining in one step: the newcomer is written into the leaver's slots, nothing moves", () => {
    const bank = new LoraChunkBank();
    const mods = Array.from({ length: 8 }, (_, i) => module(16, 600 + i)); // K = 16: one chunk each
    const wide = module(32, 610); // two chunks at K = 16
    const fedOf = (ms: ComposedModule[]) => ms.map((m, row) => ({ row, m }));
    const x = Float32Array.from({ length: I }, (_, i) => 0.3 * i - 0.5);
    const check = (fed: FedRow[]) => {
      const got = bank.feed("m", fed, I, O);
      const want = wantProducts(fed, fed.length, x);
      rowProducts(got, fed.length, x).forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 5));
      return got;
    };
    check(fedOf(mods.slice(0, 6)));
    const chunk = 16 * (I + O);
    let before = bank.copiedFloats;
    // Row 1 leaves, mods[6] joins: one chunk written into slot 1, no move.
    const f = check(fedOf([mods[0]!, mods[2]!, mods[3]!, mods[4]!, mods[5]!, mods[6]!]));
    expect(bank.copiedFloats - before).toBe(chunk);
    expect(Number((f.rows.data as BigInt64Array)[1])).toBe(5);
    // Two rows leave (slots 0 and 3), one two-chunk row joins into both; then a leave with no join moves one tail chunk.
    before = bank.copiedFloats;
    check(fedOf([mods[2]!, mods[4]!, mods[5]!, mods[6]!, wide]));
    expect(bank.copiedFloats - before).toBe(2 * chunk);
    before = bank.copiedFloats;
    check(fedOf([mods[2]!, mods[5]!, mods[6]!, wide]));
    expect(bank.copiedFloats - before).toBe(chunk);
    // A newcomer wider than the holes takes them and puts the rest of its chunks at the end: only its own chunks are
    // written, nothing moves (before, it went to the end whole and a tail chunk moved into the hole: 3 chunks copied).
    before = bank.copiedFloats;
    const wide2 = module(32, 611);
    const g = check(fedOf([mods[5]!, mods[6]!, wide, wide2]));
    expect(g.at.dims[0]).toBe(6);
    expect(bank.copiedFloats - before).toBe(2 * chunk);
    // One hole, two wide newcomers (3 and 2 chunks): the first takes the hole and appends 2, the second appends 2.
    before = bank.copiedFloats;
    const h = check(fedOf([mods[6]!, wide, wide2, module(48, 614), module(32, 615)]));
    expect(h.at.dims[0]).toBe(10);
    expect(bank.copiedFloats - before).toBe(5 * chunk);
  });

  it("a batch filling row by row grows its buffers in place: nothing but the joining rows' chunks is ever copied", () => {
    const bank = new LoraChunkBank();
    const mods = Array.from({ length: 40 }, (_, i) => module(8, 400 + i));
    for (let n = 1; n <= mods.length; n++) bank.feed("m", mods.slice(0, n).map((m, row) => ({ row, m })), I, O);
    expect(bank.copiedFloats).toBe(mods.length * 8 * (I + O));
  });

  it("after a burst the buffers shrink only once sparse for SPARSE_STEPS feeds over SPARSE_MS: a dip between arrivals keeps its pages", () => {
    let now = 0;
    const bank = new LoraChunkBank(() => now);
    const mods = Array.from({ length: 64 }, (_, i) => module(8, 600 + i));
    const x = Float32Array.from({ length: I }, (_, i) => i / I - 0.4);
    bank.feed("m", mods.map((m, row) => ({ row, m })), I, O); // the burst
    const full = bank.heldFloats;
    const few = mods.slice(0, 2).map((m, row) => ({ row, m }));
    for (let step = 0; step < 3 * SPARSE_STEPS; step++) {
      now += 100; // 9.6 s of sparse feeds: under SPARSE_MS
      const f = bank.feed("m", few, I, O);
      expect(Array.from(rowProducts(f, 2, x))).toEqual(Array.from(wantProducts(few, 2, x)));
    }
    expect(bank.heldFloats).toBe(full);
    now += SPARSE_MS;
    const f = bank.feed("m", few, I, O);
    expect(bank.heldFloats).toBeLessThan(full / 4);
    expect(Array.from(rowProducts(f, 2, x))).toEqual(Array.from(wantProducts(few, 2, x)));
    // Dense again: the sparse count starts over, so a later dip waits SPARSE_MS again.
    bank.feed("m", mods.map((m, row) => ({ row, m })), I, O);
    const regrown = bank.heldFloats;
    for (let step = 0; step < 2 * SPARSE_STEPS; step++) {
      now += 100;
      bank.feed("m", few, I, O);
    }
    expect(bank.heldFloats).toBe(regrown);
  });

  it("K stays while it costs at most REBUILD_COST_RATIO × the best K's columns; beyond, the module is rebuilt once at the best K", () => {
    const bank = new LoraChunkBank();
    const wide = module(40, 300);
    const small = Array.from({ length: 6 }, (_, i) => module(4, 301 + i));
    const K = (f: ChunkFeeds) => f.at.dims[2];
    expect(K(bank.feed("m", [{ row: 0, m: wide }], I, O))).toBe(40);
    // [40, 4]: K = 40 costs 2 · 44 = 88, K = 4 costs 11 · 8 = 88: kept.
    expect(K(bank.feed("m", [{ row: 0, m: wide }, { row: 1, m: small[0]! }], I, O))).toBe(40);
    // [40, 4 × 6]: K = 40 costs 7 · 44 = 308 > 1.25 × (K = 4: 16 · 8 = 128): rebuilt at K = 4.
    const f = bank.feed("m", [{ row: 0, m: wide }, ...small.map((m, i) => ({ row: i + 1, m }))], I, O);
    expect(K(f)).toBe(4);
    expect(f.at.dims[0]).toBe(16);
  });

  it("copyColumns / copyColumnsPadded (unrolled for widths 4, 8, 16) equal the plain double loop for every width, stride and offset", () => {
    const rand = seededRandom(21);
    for (let width = 1; width <= 20; width++) {
      for (const [sStride, dStride] of [[width, width], [width + 3, width], [40, width + 5]] as const) {
        const rows = 7;
        const src = Float32Array.from({ length: 5 + rows * sStride }, () => rand());
        const got = Float32Array.from({ length: 9 + rows * dStride }, () => -1);
        const want = got.slice();
        const padded = got.slice();
        copyColumns(got, 9, dStride, src, 5, sStride, rows, width);
        copyColumnsPadded(padded, 9, dStride, src, 5, sStride, rows, width);
        for (let x = 0; x < rows; x++) for (let j = 0; j < width; j++) want[9 + x * dStride + j] = src[5 + x * sStride + j]!;
        expect(Array.from(got), `width ${width}, strides ${sStride}/${dStride}`).toEqual(Array.from(want));
        for (let x = 0; x < rows; x++) for (let j = width; j < dStride; j++) want[9 + x * dStride + j] = 0;
        expect(Array.from(padded), `padded width ${width}, strides ${sStride}/${dStride}`).toEqual(Array.from(want));
      }
    }
  });

  it("copyFloatPairs (unrolled for 2, 4, 8 pairs) moves every float's bits as they are (NaN payloads, -0), interpreted and once V8 has optimized it", () => {
    const rand = seededRandom(23);
    const rows = 7;
    const cases: Array<{ label: string; width: number; sStride: number; dStride: number; src: Float64Array; got: Float32Array; gotBits: Uint32Array; want: Uint32Array }> = [];
    for (let width = 1; width <= 10; width++) {
      for (const [sStride, dStride] of [[width, width], [width + 3, width], [24, width + 5]] as const) {
        const src = Float32Array.from({ length: 2 * (5 + rows * sStride) }, () => rand() - 0.5);
        const bits = new Uint32Array(src.buffer);
        // In every row, not only the first: optimized code may run a loop's first iteration apart (loop peeling).
        for (let x = 0; x < rows; x++) {
          const p = 2 * (5 + x * sStride); // the row's first pair, in floats
          bits[p + 1] = 0x7ff00001; // with a float before it: a signalling-NaN double
          bits[p + 2] = 0xffc00123; // a float NaN with a payload
          bits[p + 3] = 0x80000000; // -0
        }
        const got = Float32Array.from({ length: 2 * (9 + rows * dStride) }, () => -1);
        // The reference: the plain double loop over the 32-bit words, no float ever loaded.
        const want = new Uint32Array(got.buffer.slice(0));
        for (let x = 0; x < rows; x++) for (let j = 0; j < 2 * width; j++) want[2 * (9 + x * dStride) + j] = bits[2 * (5 + x * sStride) + j]!;
        cases.push({ label: `width ${width} pairs, strides ${sStride}/${dStride}`, width, sStride, dStride, src: new Float64Array(src.buffer), got, gotBits: new Uint32Array(got.buffer), want });
      }
    }
    // 700 passes over the 30 cases (21 000 calls, every width's branch seen from the first pass): under vitest,
    // V8 had copyFloatPairs TurboFan-optimized from pass ≈ 100 (%GetOptimizationStatus under
    // --allow-natives-syntax in a copy of this loop), so most passes check the optimized code's copies, the first the interpreter's.
    const mismatches: string[] = [];
    for (let pass = 0; pass < 700 && mismatches.length === 0; pass++) {
      for (const c of cases) {
        c.got.fill(-1);
        copyFloatPairs(new Float64Array(c.got.buffer), 9, c.dStride, c.src, 5, c.sStride, rows, c.width);
        const i = c.gotBits.findIndex((w, k) => w !== c.want[k]);
        if (i >= 0) mismatches.push(`pass ${pass}, ${c.label}: word ${i} is 0x${c.gotBits[i]!.toString(16)}, want 0x${c.want[i]!.toString(16)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("a bank writes the same chunks whether a row's Aᵗ is copied in pairs (even K and r, aligned) or float by float", () => {
    const x = Float32Array.from({ length: I }, (_, i) => 0.1 * i - 0.2);
    const even = [module(6, 700), module(4, 701), module(10, 702)]; // K = 2 (mixed even ranks): pairs
    const offset = (m: ComposedModule): ComposedModule => {
      // The same factors at a 4-byte offset: not 8-byte aligned, so the float-by-float path.
      const at = new Float32Array(m.at.length + 1).subarray(1);
      at.set(m.at);
      return { ...m, at };
    };
    const fed = (ms: ComposedModule[]) => ms.map((m, row) => ({ row, m }));
    const a = new LoraChunkBank().feed("m", fed(even), I, O);
    const b = new LoraChunkBank().feed("m", fed(even.map(offset)), I, O);
    expect(a.at.dims).toEqual(b.at.dims);
    expect(Array.from(a.at.data as Float32Array)).toEqual(Array.from(b.at.data as Float32Array));
    expect(Array.from(a.bt.data as Float32Array)).toEqual(Array.from(b.bt.data as Float32Array));
    const want = wantProducts(fed(even), 3, x);
    rowProducts(a, 3, x).forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 5));
  });

  it("the rows tensor is kept between steps and only rewritten where a slot's row changed, yet always names each chunk's current row", () => {
    const bank = new LoraChunkBank();
    const mods = Array.from({ length: 5 }, (_, i) => module(16, 500 + i)); // K = 16: one chunk each
    const rowsOf = (f: ChunkFeeds) => Array.from(f.rows.data as BigInt64Array, Number);
    const first = bank.feed("m", mods.map((m, row) => ({ row, m })), I, O);
    expect(rowsOf(first)).toEqual([0, 1, 2, 3, 4]);
    // Rows shift by one (a base row joined at 0), and the middle one leaves: its slot takes the tail's chunk.
    const fed = [mods[0]!, mods[1]!, mods[3]!, mods[4]!].map((m, i) => ({ row: i + 1, m }));
    const second = bank.feed("m", fed, I, O);
    const byChunk = rowsOf(second);
    const bt = second.bt.data as Float32Array;
    const K = second.at.dims[2] as number;
    // Each chunk's row is the row of the module whose Bᵗ sits in that slot.
    byChunk.forEach((row, slot) => {
      const m = fed.find((f) => f.row === row)!.m;
      expect(Array.from(bt.subarray(slot * K * O, slot * K * O + m.bt.length))).toEqual(Array.from(m.bt));
    });
    expect([...byChunk].sort()).toEqual([1, 2, 3, 4]);
  });
});
