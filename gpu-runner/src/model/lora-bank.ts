/**
 * Resident per-row LoRA chunks: the per-row path's inputs kept packed between steps, so a step
 * under continuous batching (rows joining and leaving every few steps) copies only what changed.
 *
 * Per module the bank holds one buffer pair Aᵗ [capacity, in, K] / Bᵗ [capacity, K, out] whose
 * first N chunk slots are live (a compact prefix, fed to ONNX Runtime as views: no copy on the
 * node backend). A mix's module that stays in the batch keeps its slots; one that leaves frees them;
 * one that joins writes its chunks into the holes of rows that left in the same step (churn: a leave and
 * a join cost one write), all of them when they fit there, else as many as there are holes and the rest
 * at the end (O(its bytes)); holes left unfilled take the tail's chunks (O(freed chunks)). The small `rows` tensor [N] (each chunk's batch row) is kept too and
 * rewritten only where a slot's row changed (rows shift when others leave). K stays fixed while it feeds at most
 * REBUILD_COST_RATIO × the columns of the best K for the current ranks (then the module is rebuilt
 * once with the best K), so churn does not flip K and rewrite everything.
 *
 * Semantics (held equal to packLora's reference path in lora-bank.test.ts and the model suite):
 * after feed(module, fed), for every fed row i: Σ_{n : rows[n] = i} (x·at[n])·bt[n] = (x·mᵢ.at)·mᵢ.bt,
 * and no chunk belongs to a row that is not fed. Chunk order differs from the reference (float
 * sums in another order: equal within rounding).
 * Cost: per step O(Σ chunks of joined + moved rows) floats copied (a joining row's Aᵗ chunk by
 * chunk, each chunk's rows in order, unrolled for K ∈ {4, 8, 16}, as float pairs for even K and rank;
 * its Bᵗ in one copy per run of consecutive slots), O(N) compares for the rows tensor.
 * Memory: one step's worth of per-row LoRA inputs stays resident (the reference allocates it per step).
 */
import { float32, int64, type HostTensor } from "../backend/index.js";
import type { ComposedModule } from "#core/lora/types";
import { chooseChunkWidth, chunkCost } from "./lora-chunks.js";

/** Rebuild a module with the best K once its resident K costs more than this × the best (chunkCost). */
export const REBUILD_COST_RATIO = 1.25;

/** Feeds in a row with at most a quarter of a module's buffers live before they shrink… */
export const SPARSE_STEPS = 32;
/**
 * …and for at least this long since the first of them (ms): a batch that dips between arrivals keeps
 * its pages. A shrink gives pages back and the next growth commits fresh ones, so under staggered
 * arrivals (bench case 9's staggered level) rows joining after a dip made decode steps pack 9.6 M
 * floats in 468 ms; with no shrink inside the level the largest packing was 103 ms and its
 * p99 inter-token ÷ median decode step 6.5× instead of 9.2–12.6×.
 */
export const SPARSE_MS = 30_000;

/** A row fed on the per-row path of one module: its batch row and its factors there (rank > 0). */
export interface FedRow {
  row: number;
  m: ComposedModule;
}

export interface ChunkFeeds {
  /** [N, in, K] */
  at: HostTensor;
  /** [N, K, out] */
  bt: HostTensor;
  /** int64 [N]: each chunk's batch row. */
  rows: HostTensor;
}

/** One fed occurrence of a module's factors and the slots of its chunks. */
interface Resident {
  m: ComposedModule;
  slots: number[];
  /** Batch row in the current step. */
  row: number;
}

class ModuleBank {
  k = 0;
  /** Live chunk slots: [0, n). */
  n = 0;
  private capacity = 0;
  private at: Float32Array = new Float32Array(0); // [capacity, in, K]
  private bt: Float32Array = new Float32Array(0); // [capacity, K, out]
  /** Slot → its resident (undefined beyond n or while being freed). */
  private owner: (Resident | undefined)[] = [];
  /** Residents by factors; the same factors on two per-row rows are two residents. */
  private readonly residents = new Map<ComposedModule, Resident[]>();
  /** Slot → its batch row, as fed (int64) and as a number to compare with; grown as N grows. */
  private rowIds = new BigInt64Array(0);
  private rowNums = new Int32Array(0);
  /** Floats copied into the bank since it was created (joins, moves, growth). */
  copiedFloats = 0;
  /** Consecutive feeds that used at most a quarter of the buffers, and when the first of them came. */
  private sparseFeeds = 0;
  private sparseSince = 0;

  constructor(
    private readonly inF: number,
    private readonly outF: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Floats the buffers hold (live or not). */
  get heldFloats(): number {
    return this.at.length + this.bt.length;
  }

  feed(fed: readonly FedRow[]): ChunkFeeds {
    const wanted = new Map<ComposedModule, number[]>();
    for (const f of fed) {
      const list = wanted.get(f.m);
      if (list) list.push(f.row);
      else wanted.set(f.m, [f.row]);
    }
    // Free what left (or occurs fewer times now): its slots become holes, filled below.
    let holes: number[] = [];
    for (const [m, list] of this.residents) {
      const keep = wanted.get(m)?.length ?? 0;
      while (list.length > keep) holes.push(...this.release(list.pop()!));
      if (list.length === 0) this.residents.delete(m);
    }
    // K: kept while good enough for the current ranks.
    const ranks = fed.map((f) => f.m.rank);
    const best = chooseChunkWidth(ranks);
    if (this.n === holes.length) {
      this.clear();
      holes = [];
      this.k = best;
    } else if (chunkCost(ranks, this.k) > REBUILD_COST_RATIO * chunkCost(ranks, best)) {
      this.clear();
      holes = [];
      this.k = best;
    }
    // Place rows: residents that stayed take their (possibly shifted) row; newcomers are written into
    // the holes of the rows that left (a leave and a join cost one write, no move): all their chunks when
    // they fit there, else as many as there are holes and the rest at the end, so no hole is left to close
    // by moving tail chunks while a newcomer still has chunks to place. The holes left after that are closed
    // by moving tail chunks in, then the rest of the newcomers are written at the end (room for all of them
    // reserved at once: one growth, not one per newcomer).
    const appended: Array<{ m: ComposedModule; resident: Resident; taken: number[] }> = [];
    holes.sort((a, b) => b - a); // lowest last: taken first
    for (const [m, rows] of wanted) {
      let list = this.residents.get(m);
      if (!list) this.residents.set(m, (list = []));
      rows.forEach((row, j) => {
        if (j < list.length) {
          list[j]!.row = row;
          return;
        }
        const resident: Resident = { m, slots: [], row };
        list.push(resident);
        const count = Math.ceil(m.rank / this.k);
        if (count <= holes.length) this.write(m, resident, holes.splice(holes.length - count, count).reverse());
        else {
          // Every hole left (all below the compacted length): none is left for compact() below to move or drop.
          const taken = holes.splice(0, holes.length).reverse();
          for (const s of taken) this.owner[s] = resident; // live from now on: written below, after the growth
          appended.push({ m, resident, taken });
        }
      });
    }
    this.compact(holes);
    let joining = 0;
    for (const { m, taken } of appended) joining += Math.ceil(m.rank / this.k) - taken.length;
    this.reserve(this.n + joining);
    for (const { m, resident, taken } of appended) {
      const rest = Math.ceil(m.rank / this.k) - taken.length;
      this.write(m, resident, [...taken, ...Array.from({ length: rest }, (_, c) => this.n + c)]);
      this.n += rest;
    }
    this.shrinkIfSparse();
    const I = this.inF;
    const O = this.outF;
    const K = this.k;
    const N = this.n;
    return {
      at: float32(this.at.subarray(0, N * I * K), [N, I, K]),
      bt: float32(this.bt.subarray(0, N * K * O), [N, K, O]),
      rows: int64(this.chunkRows(), [N]),
    };
  }

  /**
   * `rows` [N]: each live slot's batch row, kept between steps and rewritten only where a slot's
   * row changed (a chunk moved, a row shifted, a row joined): O(N) compares, O(changed) BigInts.
   */
  private chunkRows(): BigInt64Array {
    const N = this.n;
    if (this.rowIds.length < N) {
      const size = Math.max(2 * N, 64);
      this.rowIds = new BigInt64Array(size);
      this.rowNums = new Int32Array(size).fill(-1);
    }
    const ids = this.rowIds;
    const nums = this.rowNums;
    for (let s = 0; s < N; s++) {
      const row = this.owner[s]!.row;
      if (nums[s] !== row) {
        nums[s] = row;
        ids[s] = BigInt(row);
      }
    }
    return ids.subarray(0, N);
  }

  clear(): void {
    this.residents.clear();
    this.owner = [];
    this.n = 0;
  }

  /** A resident's slots, now owned by nobody (holes until filled or compacted). */
  private release(r: Resident): number[] {
    for (const s of r.slots) this.owner[s] = undefined;
    return r.slots;
  }

  /** Keeps [0, n) compact after `holes` were freed: live tail chunks move into the holes. */
  private compact(holes: number[]): void {
    if (holes.length === 0) return;
    holes.sort((a, b) => a - b);
    const newN = this.n - holes.length;
    let tail = this.n - 1;
    for (const hole of holes) {
      if (hole >= newN) break;
      while (this.owner[tail] === undefined) tail--;
      this.move(tail, hole);
      tail--;
    }
    this.owner.length = newN;
    this.n = newN;
  }

  private move(from: number, to: number): void {
    const IK = this.inF * this.k;
    const KO = this.k * this.outF;
    this.at.copyWithin(to * IK, from * IK, (from + 1) * IK);
    this.bt.copyWithin(to * KO, from * KO, (from + 1) * KO);
    this.copiedFloats += IK + KO;
    const r = this.owner[from]!;
    r.slots[r.slots.indexOf(from)] = to;
    this.owner[to] = r;
    this.owner[from] = undefined;
  }

  /**
   * Writes m's ⌈r/K⌉ chunks at width K into `slots` (chunk c into slots[c]; room ensured by the caller)
   * as `resident`'s. Semantics: chunk c at slot s: at[s, x, j] = m.at[x, cK + j] and
   * bt[s, j, y] = m.bt[cK + j, y] for cK + j < r, else 0 (as chunkBlock, written in place: no intermediate block).
   */
  private write(m: ComposedModule, resident: Resident, slots: readonly number[]): void {
    const K = this.k;
    const I = this.inF;
    const O = this.outF;
    const r = m.rank;
    const count = slots.length;
    const at = this.at;
    const src = m.at;
    if (K === r) at.set(src, slots[0]! * I * K);
    else {
      // Chunk by chunk, its rows written in order: chunk c row x = Aᵗ row x, columns [cK, cK + width).
      // Even K and r (and 8-byte aligned arrays): full chunks are copied as pairs of floats (copyFloatPairs).
      const pairs = K % 2 === 0 && r % 2 === 0 && src.byteOffset % 8 === 0 && at.byteOffset % 8 === 0;
      const at2 = pairs ? new Float64Array(at.buffer, at.byteOffset, at.length >> 1) : undefined;
      const src2 = pairs ? new Float64Array(src.buffer, src.byteOffset, src.length >> 1) : undefined;
      for (let c = 0; c < count; c++) {
        const cK = c * K;
        const width = Math.min(K, r - cK);
        const d = slots[c]! * I * K;
        if (width === K && at2 && src2) copyFloatPairs(at2, d >> 1, K >> 1, src2, cK >> 1, r >> 1, I, K >> 1);
        else if (width === K) copyColumns(at, d, K, src, cK, r, I, K);
        else copyColumnsPadded(at, d, K, src, cK, r, I, width);
      }
    }
    // Bᵗ: chunk c holds rows [cK, cK + width) — one copy per run of consecutive slots — then the last chunk's zero tail.
    for (let c = 0; c < count; ) {
      let end = c + 1;
      while (end < count && slots[end] === slots[end - 1]! + 1) end++;
      this.bt.set(m.bt.subarray(c * K * O, Math.min(r, end * K) * O), slots[c]! * K * O);
      c = end;
    }
    this.bt.fill(0, (slots[count - 1]! * K + r - (count - 1) * K) * O, (slots[count - 1]! + 1) * K * O);
    for (const s of slots) this.owner[s] = resident;
    resident.slots.push(...slots);
    this.copiedFloats += count * K * (I + O);
  }

  /**
   * Makes room for `slots` chunks at the current K, keeping [0, n): the buffers grow in place
   * (resizable ArrayBuffers: no copy, pages committed as they are written) within their reserved
   * address space; only past it do they move (a full copy, a step-time spike; reservation 4×).
   */
  private reserve(slots: number): void {
    const IK = this.inF * this.k;
    const KO = this.k * this.outF;
    if (slots <= this.capacity && this.at.length >= slots * IK && this.bt.length >= slots * KO) return;
    this.resize(Math.max(Math.ceil(slots * 1.25), 8));
  }

  /** Gives memory back once at most a quarter of the buffers was live for SPARSE_STEPS feeds in a row over SPARSE_MS (a burst has passed). */
  private shrinkIfSparse(): void {
    const live = this.n * this.k * (this.inF + this.outF);
    const held = this.at.length + this.bt.length;
    if (held <= 4 * Math.max(live, 8 * Math.max(this.k, 1) * (this.inF + this.outF))) this.sparseFeeds = 0;
    else {
      if (this.sparseFeeds++ === 0) this.sparseSince = this.now();
      if (this.sparseFeeds >= SPARSE_STEPS && this.now() - this.sparseSince >= SPARSE_MS) {
        this.resize(Math.max(2 * this.n, 8));
        this.sparseFeeds = 0;
      }
    }
  }

  private resize(slots: number): void {
    const IK = this.inF * this.k;
    const KO = this.k * this.outF;
    const at = resizeFloats(this.at, slots * IK, this.n * IK);
    const bt = resizeFloats(this.bt, slots * KO, this.n * KO);
    this.copiedFloats += at.copied + bt.copied;
    this.at = at.data;
    this.bt = bt.data;
    this.capacity = slots;
  }
}

/**
 * Copies a column block between row-major matrices: dst[d + x·dStride + j] = src[s + x·sStride + j]
 * for x < rows, j < width. Widths 4, 8 and 16 (the usual chunk widths) are unrolled.
 * Semantics: the plain double loop (the default branch); the unrolled ones are the same assignments.
 * Cost: rows·width float moves; no allocation.
 */
export function copyColumns(dst: Float32Array, d: number, dStride: number, src: Float32Array, s: number, sStride: number, rows: number, width: number): void {
  switch (width) {
    case 4:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!; dst[d + 2] = src[s + 2]!; dst[d + 3] = src[s + 3]!;
      }
      return;
    case 8:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!; dst[d + 2] = src[s + 2]!; dst[d + 3] = src[s + 3]!;
        dst[d + 4] = src[s + 4]!; dst[d + 5] = src[s + 5]!; dst[d + 6] = src[s + 6]!; dst[d + 7] = src[s + 7]!;
      }
      return;
    case 16:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!; dst[d + 2] = src[s + 2]!; dst[d + 3] = src[s + 3]!;
        dst[d + 4] = src[s + 4]!; dst[d + 5] = src[s + 5]!; dst[d + 6] = src[s + 6]!; dst[d + 7] = src[s + 7]!;
        dst[d + 8] = src[s + 8]!; dst[d + 9] = src[s + 9]!; dst[d + 10] = src[s + 10]!; dst[d + 11] = src[s + 11]!;
        dst[d + 12] = src[s + 12]!; dst[d + 13] = src[s + 13]!; dst[d + 14] = src[s + 14]!; dst[d + 15] = src[s + 15]!;
      }
      return;
    default:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) for (let j = 0; j < width; j++) dst[d + j] = src[s + j]!;
  }
}

/**
 * copyColumns over pairs of floats: `dst` and `src` are Float64Array views of Float32 data, every offset, stride and
 * width counted in pairs, so an even-width block of floats moves in half the element copies (≈ 1.4× the float-by-float
 * copy in a side microbenchmark on the bench machine, not in `npm run bench`: 3.5 → 4.8 GB/s at K = 8, 4.6 → 6.4 at
 * K = 16, arrays larger than the caches; bench case 3c measures the packing as a whole).
 * Semantics: the plain double loop of copyColumns on the pairs; the bits of both floats of a pair are moved as they
 * are (V8 neither canonicalizes NaNs on Float64Array loads and stores nor converts the values: lora-bank.test.ts
 * holds NaN payloads equal, interpreted and TurboFan-optimized). Widths 2, 4 and 8 pairs are unrolled.
 */
export function copyFloatPairs(dst: Float64Array, d: number, dStride: number, src: Float64Array, s: number, sStride: number, rows: number, width: number): void {
  switch (width) {
    case 2:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!;
      }
      return;
    case 4:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!; dst[d + 2] = src[s + 2]!; dst[d + 3] = src[s + 3]!;
      }
      return;
    case 8:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
        dst[d] = src[s]!; dst[d + 1] = src[s + 1]!; dst[d + 2] = src[s + 2]!; dst[d + 3] = src[s + 3]!;
        dst[d + 4] = src[s + 4]!; dst[d + 5] = src[s + 5]!; dst[d + 6] = src[s + 6]!; dst[d + 7] = src[s + 7]!;
      }
      return;
    default:
      for (let x = 0; x < rows; x++, d += dStride, s += sStride) for (let j = 0; j < width; j++) dst[d + j] = src[s + j]!;
  }
}

/** copyColumns for a block narrower than dst's rows: columns [width, dStride) of each dst row are zeroed. */
export function copyColumnsPadded(dst: Float32Array, d: number, dStride: number, src: Float32Array, s: number, sStride: number, rows: number, width: number): void {
  for (let x = 0; x < rows; x++, d += dStride, s += sStride) {
    let j = 0;
    for (; j < width; j++) dst[d + j] = src[s + j]!;
    for (; j < dStride; j++) dst[d + j] = 0;
  }
}

/** ES2024 resizable ArrayBuffer (Node ≥ 20; the project's TypeScript lib is ES2023). */
interface ResizableArrayBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableArrayBuffer;

/** Address space reserved at least per buffer for growing in place (bytes; committed only as written). */
const MIN_RESERVED_BYTES = 64 * 1024 * 1024;

/**
 * `floats` values over `current`'s buffer, resized in place when it is resizable and its
 * reservation allows (no copy; views of it handed out earlier stay valid while it grows); else a
 * new resizable buffer reserving 4× (at least MIN_RESERVED_BYTES) holding the first `keep` values.
 */
function resizeFloats(current: Float32Array, floats: number, keep: number): { data: Float32Array; copied: number } {
  const buffer = current.buffer as ResizableArrayBuffer;
  const bytes = floats * Float32Array.BYTES_PER_ELEMENT;
  if (buffer.resizable && bytes <= buffer.maxByteLength) {
    buffer.resize(bytes);
    return { data: new Float32Array(buffer, 0, floats), copied: 0 };
  }
  const data = new Float32Array(new ResizableArrayBuffer(bytes, { maxByteLength: Math.max(4 * bytes, MIN_RESERVED_BYTES) }), 0, floats);
  data.set(current.subarray(0, keep));
  return { data, copied: keep };
}

/**
 * The resident per-row chunks of every module of one model variant. Not safe to mutate while a
 * run still reads its views: the variant feeds from it only when no step using it is in flight.
 */
export class LoraChunkBank {
  private readonly modules = new Map<string, ModuleBank>();

  /** `now`: the clock of the shrink rule (SPARSE_MS; tests pass their own). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The per-row path's feeds of `module` for this step's fed rows (see the file's Semantics). */
  feed(module: string, fed: readonly FedRow[], inF: number, outF: number): ChunkFeeds {
    let bank = this.modules.get(module);
    if (!bank) this.modules.set(module, (bank = new ModuleBank(inF, outF, this.now)));
    try {
      return bank.feed(fed);
    } catch (e) {
      bank.clear(); // never leave a half-updated layout behind
      throw e;
    }
  }

  /** Floats the bank's buffers hold (all modules, live or not). */
  get heldFloats(): number {
    let n = 0;
    for (const b of this.modules.values()) n += b.heldFloats;
    return n;
  }

  /** Floats copied into the bank so far (all modules): what packing costs with it. */
  get copiedFloats(): number {
    let n = 0;
    for (const b of this.modules.values()) n += b.copiedFloats;
    return n;
  }

  clear(): void {
    this.modules.clear();
  }
}
