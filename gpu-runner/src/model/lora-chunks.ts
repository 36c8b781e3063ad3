/**
 * The per-row LoRA path in rank chunks: a row whose mix has rank r on a module is fed as
 * ⌈r/K⌉ chunks Aᵗ [in, K] / Bᵗ [K, out] (the last one zero-padded), each tagged with its batch
 * row; the graph gathers each chunk's row of x, multiplies, and adds the product into that row
 * (ScatterND add). Only rows with a per-row mix on the module are fed, and a row pays for its
 * own rank rounded up to K, not for the batch's largest rank.
 */
import type { ComposedModule } from "#core/lora/types";

/**
 * Per-chunk overhead in rank columns (one more small GEMM pair and a gathered row of x).
 * Measured on loraedge-small decode (see README): K = 8 at ranks 8–96 is within noise of K = max
 * rank per chunk count, so a chunk costs about as much as a few columns of padding.
 */
export const CHUNK_OVERHEAD_COLUMNS = 4;

/** Chunk widths considered besides the ranks themselves. */
const CANDIDATES = [4, 8, 16, 32, 64];

/** chooseChunkWidth's last ranks (a copy) and its answer. */
let lastChoice: { ranks: readonly number[]; k: number } = { ranks: [], k: 0 };

/**
 * The chunk width K for one module of one step, given the ranks (> 0) of the rows fed there.
 * Semantics: argmin over K ∈ ranks ∪ {4, 8, 16, 32, 64}, K ≤ max rank, of
 *   Σᵢ ⌈rᵢ/K⌉·(K + CHUNK_OVERHEAD_COLUMNS)   (fed columns + per-chunk overhead); ties → larger K.
 * Equal ranks give K = r (one chunk per row, no padding). 0 when there are no ranks.
 */
export function chooseChunkWidth(ranks: readonly number[]): number {
  if (ranks.length === 0) return 0;
  // The modules of one step usually see the same ranks (a mix has one rank on every module it touches): the last answer.
  if (ranks.length === lastChoice.ranks.length && ranks.every((r, i) => r === lastChoice.ranks[i])) return lastChoice.k;
  // Distinct ranks with their counts (a step's rows repeat few ranks): the cost of a width is then
  // O(distinct ranks), not O(rows), and nothing is sorted (ties are settled by the comparison below).
  const counts = new Map<number, number>();
  let max = 0;
  for (const r of ranks) {
    counts.set(r, (counts.get(r) ?? 0) + 1);
    if (r > max) max = r;
  }
  let best = max;
  let bestCost = Infinity;
  const consider = (k: number) => {
    let cost = 0;
    for (const [r, n] of counts) cost += n * Math.ceil(r / k) * (k + CHUNK_OVERHEAD_COLUMNS);
    if (cost < bestCost || (cost === bestCost && k > best)) {
      best = k;
      bestCost = cost;
    }
  };
  for (const k of counts.keys()) consider(k);
  for (const k of CANDIDATES) if (k <= max && !counts.has(k)) consider(k);
  lastChoice = { ranks: [...ranks], k: best };
  return best;
}

/** Σᵢ ⌈rᵢ/K⌉·(K + CHUNK_OVERHEAD_COLUMNS): fed columns + per-chunk overhead of ranks at width K (> 0). */
export function chunkCost(ranks: readonly number[], k: number): number {
  let cost = 0;
  for (const r of ranks) cost += Math.ceil(r / k) * (k + CHUNK_OVERHEAD_COLUMNS);
  return cost;
}

export interface ChunkBlock {
  /** Number of chunks ⌈r/K⌉. */
  count: number;
  /** [count, in, K]: chunk c holds columns [cK, cK + K) of Aᵗ, zero beyond r. */
  at: Float32Array;
  /** [count, K, out]: rows [cK, cK + K) of Bᵗ, zero beyond r. */
  bt: Float32Array;
}

/** The last chunk layout built per module (mixes are immutable): steady batches re-use it. */
const resident = new WeakMap<ComposedModule, { k: number; block: ChunkBlock }>();

/**
 * A module's factors in chunks of width K, built once per (module, K) and kept with the module
 * (the latest K only). When K = r the block is the module's own arrays (no copy).
 * Semantics: at[c, x, j] = m.at[x, cK + j] if cK + j < r else 0; bt[c, j, y] = m.bt[cK + j, y] likewise.
 * Cost: one strided pass over Aᵗ and one copy of Bᵗ the first time (module, K) is seen.
 */
export function chunkBlock(m: ComposedModule, k: number): ChunkBlock {
  const kept = resident.get(m);
  if (kept && kept.k === k) return kept.block;
  const r = m.rank;
  const I = m.inFeatures;
  const O = m.outFeatures;
  const count = Math.ceil(r / k);
  let block: ChunkBlock;
  if (k === r) block = { count: 1, at: m.at, bt: m.bt };
  else {
    const at = new Float32Array(count * I * k); // [count, in, K]
    for (let c = 0; c < count; c++) {
      const width = Math.min(k, r - c * k);
      for (let x = 0; x < I; x++) {
        const d = (c * I + x) * k;
        const s = x * r + c * k;
        for (let j = 0; j < width; j++) at[d + j] = m.at[s + j]!;
      }
    }
    const bt = new Float32Array(count * k * O); // [count, K, out]: Bᵗ's rows in order, zero tail
    bt.set(m.bt);
    block = { count, at, bt };
  }
  resident.set(m, { k, block });
  return block;
}
