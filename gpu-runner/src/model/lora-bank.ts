/**
 * Resident per-row LoRA chunks: the per-row path's inputs kept packed between steps, so a step
 * under continuous batching (rows joining and leaving every few steps) copies only what changed.
 *
 * Per module the bank holds one buffer pair Aᵗ [capacity, in, K] / Bᵗ [capacity, K, out] whose
 * first N chunk slots are live (a compact prefix, fed to ONNX Runtime as views: no copy on the
 * node backend). A mix's module that stays in the batch keeps its slots; one that leaves frees them
 * and the tail's chunks move into the holes (O(freed chunks)); one that joins writes its chunks at
 * the end (O(its bytes)). Only the small `rows` tensor [N] (each chunk's batch row) is rebuilt
 * every step, because rows shift when others leave. K stays fixed while it feeds at most
 * REBUILD_COST_RATIO × the columns of the best K for the current ranks (then the module is rebuilt
 * once with the best K), so churn does not flip K and rewrite everything.
 *
 * Semantics (held equal to packLora's reference path in lora-bank.test.ts and the model suite):
 * after feed(module, fed), for every fed row i: Σ_{n : rows[n] = i} (x·at[n])·bt[n] = (x·mᵢ.at)·mᵢ.bt,
 * and no chunk belongs to a row that is not fed. Chunk order differs from the reference (float
 * sums in another order: equal within rounding).
 * Cost: per step O(Σ chunks of joined + moved rows) floats copied, O(N) for the rows tensor.
 * Memory: one step's worth of per-row LoRA inputs stays resident (the reference allocates it per step).
 */
import { float32, int64, type HostTensor } from "../backend/index.js";
import type { ComposedModule } from "#core/lora/types";
import { chooseChunkWidth, chunkCost } from "./lora-chunks.js";

/** Rebuild a module with the best K once its resident K costs more than this × the best (chunkCost). */
export const REBUILD_COST_RATIO = 1.25;

/** Feeds in a row with at most a quarter of a module's buffers live before they shrink. */
export const SPARSE_STEPS = 32;

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
  private at = new Float32Array(0); // [capacity, in, K]
  private bt = new Float32Array(0); // [capacity, K, out]
  /** Slot → its resident (undefined beyond n or while being freed). */
  private owner: (Resident | undefined)[] = [];
  /** Residents by factors; the same factors on two per-row rows are two residents. */
  private readonly residents = new Map<ComposedModule, Resident[]>();
  /** Floats copied into the bank since it was created (joins, moves, growth). */
  copiedFloats = 0;
  /** Consecutive feeds that used at most a quarter of the buffers. */
  private sparseFeeds = 0;

  constructor(
    private readonly inF: number,
    private readonly outF: number,
  ) {}

  feed(fed: readonly FedRow[]): ChunkFeeds {
    const wanted = new Map<ComposedModule, number[]>();
    for (const f of fed) {
      const list = wanted.get(f.m);
      if (list) list.push(f.row);
      else wanted.set(f.m, [f.row]);
    }
    // Free what left (or occurs fewer times now).
    const freed: Resident[] = [];
    for (const [m, list] of this.residents) {
      const keep = wanted.get(m)?.length ?? 0;
      while (list.length > keep) freed.push(list.pop()!);
      if (list.length === 0) this.residents.delete(m);
    }
    this.free(freed);
    // K: kept while good enough for the current ranks.
    const ranks = fed.map((f) => f.m.rank);
    const best = chooseChunkWidth(ranks);
    if (this.n === 0) this.k = best;
    else if (chunkCost(ranks, this.k) > REBUILD_COST_RATIO * chunkCost(ranks, best)) {
      this.clear();
      this.k = best;
    }
    // Place rows: residents that stayed take their (possibly shifted) row, newcomers are written
    // (room for all of them reserved at once: one growth, not one per newcomer).
    let joining = 0;
    for (const [m, rows] of wanted) joining += Math.max(0, rows.length - (this.residents.get(m)?.length ?? 0)) * Math.ceil(m.rank / this.k);
    this.reserve(this.n + joining);
    for (const [m, rows] of wanted) {
      let list = this.residents.get(m);
      if (!list) this.residents.set(m, (list = []));
      rows.forEach((row, j) => {
        if (j < list.length) list[j]!.row = row;
        else list.push(this.write(m, row));
      });
    }
    this.shrinkIfSparse();
    const I = this.inF;
    const O = this.outF;
    const K = this.k;
    const N = this.n;
    const rows = new BigInt64Array(N);
    for (let s = 0; s < N; s++) rows[s] = BigInt(this.owner[s]!.row);
    return {
      at: float32(this.at.subarray(0, N * I * K), [N, I, K]),
      bt: float32(this.bt.subarray(0, N * K * O), [N, K, O]),
      rows: int64(rows, [N]),
    };
  }

  clear(): void {
    this.residents.clear();
    this.owner = [];
    this.n = 0;
  }

  /** Frees residents' slots and keeps [0, n) compact: live tail chunks move into the holes. */
  private free(freed: readonly Resident[]): void {
    if (freed.length === 0) return;
    const holes: number[] = [];
    for (const r of freed) for (const s of r.slots) {
      holes.push(s);
      this.owner[s] = undefined;
    }
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
   * Appends m's chunks at width K as a new resident of `row` (room reserved by the caller).
   * Semantics: chunk c at slot s: at[s, x, j] = m.at[x, cK + j] and bt[s, j, y] = m.bt[cK + j, y]
   * for cK + j < r, else 0 (as chunkBlock, written in place: no intermediate block).
   */
  private write(m: ComposedModule, row: number): Resident {
    const K = this.k;
    const I = this.inF;
    const O = this.outF;
    const r = m.rank;
    const count = Math.ceil(r / K);
    const first = this.n;
    const at = this.at;
    const src = m.at;
    if (K === r) at.set(src, first * I * K);
    else {
      // Row x of Aᵗ read once, in order; its K-wide pieces go to the chunks' row x.
      for (let x = 0; x < I; x++) {
        const s = x * r;
        for (let c = 0; c < count; c++) {
          const d = ((first + c) * I + x) * K;
          const cK = c * K;
          const width = Math.min(K, r - cK);
          for (let j = 0; j < width; j++) at[d + j] = src[s + cK + j]!;
          for (let j = width; j < K; j++) at[d + j] = 0;
        }
      }
    }
    // Bᵗ's rows in order are the chunks' rows in order: one copy, then the last chunk's zero tail.
    this.bt.set(m.bt, first * K * O);
    this.bt.fill(0, (first * K + r) * O, (first + count) * K * O);
    const resident: Resident = { m, slots: [], row };
    for (let c = 0; c < count; c++) {
      this.owner[first + c] = resident;
      resident.slots.push(first + c);
    }
    this.n += count;
    this.copiedFloats += count * K * (I + O);
    return resident;
  }

  /**
   * Grows the buffers to hold `slots` chunks at the current K, keeping [0, n): ×1.5, and 25 %
   * headroom over what is asked, so a batch that grows by a few rows does not copy everything.
   */
  private reserve(slots: number): void {
    const IK = this.inF * this.k;
    const KO = this.k * this.outF;
    if (slots <= this.capacity && this.at.length >= slots * IK && this.bt.length >= slots * KO) return;
    this.resize(Math.max(Math.ceil(slots * 1.25), Math.ceil(this.capacity * 1.5), 8));
  }

  /** Gives memory back once at most a quarter of the buffers was live for SPARSE_STEPS feeds in a row (a burst has passed). */
  private shrinkIfSparse(): void {
    const live = this.n * this.k * (this.inF + this.outF);
    const held = this.at.length + this.bt.length;
    if (held <= 4 * Math.max(live, 8 * Math.max(this.k, 1) * (this.inF + this.outF))) this.sparseFeeds = 0;
    else if (++this.sparseFeeds >= SPARSE_STEPS) {
      this.resize(Math.max(2 * this.n, 8));
      this.sparseFeeds = 0;
    }
  }

  private resize(slots: number): void {
    const IK = this.inF * this.k;
    const KO = this.k * this.outF;
    const at = new Float32Array(slots * IK);
    const bt = new Float32Array(slots * KO);
    at.set(this.at.subarray(0, this.n * IK));
    bt.set(this.bt.subarray(0, this.n * KO));
    this.copiedFloats += this.n * (IK + KO);
    this.at = at;
    this.bt = bt;
    this.capacity = slots;
  }
}

/**
 * The resident per-row chunks of every module of one model variant. Not safe to mutate while a
 * run still reads its views: the variant feeds from it only when no step using it is in flight.
 */
export class LoraChunkBank {
  private readonly modules = new Map<string, ModuleBank>();

  /** The per-row path's feeds of `module` for this step's fed rows (see the file's Semantics). */
  feed(module: string, fed: readonly FedRow[], inF: number, outF: number): ChunkFeeds {
    let bank = this.modules.get(module);
    if (!bank) this.modules.set(module, (bank = new ModuleBank(inF, outF)));
    try {
      return bank.feed(fed);
    } catch (e) {
      bank.clear(); // never leave a half-updated layout behind
      throw e;
    }
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
