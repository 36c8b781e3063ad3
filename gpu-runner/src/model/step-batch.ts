/**
 * Turns a list of independent rows into one batched graph run, and the outputs back into rows.
 *
 * Layout (row i with Lᵢ cached tokens and nᵢ new ones; P = max Lᵢ, S = max nᵢ, T = P + S):
 * - past slots [0, Lᵢ) hold row i's cache, [Lᵢ, P) are padding;
 * - new tokens sit at slots [P, P + nᵢ), [P + nᵢ, T) are padding;
 * - query j < nᵢ attends key slot k iff k < Lᵢ or P ≤ k ≤ P + j (causal), nothing else;
 * - position of new token j is Lᵢ + j.
 * Padded rows of LoRA inputs are zero, so a row never sees another row's values.
 */
import { float32, int32, int64, type HostTensor } from "../backend/index.js";
import type { ComposedMix, ComposedModule } from "#core/lora/types";
import type { GraphSpec } from "./graph-spec.js";
import { layerName } from "./graph-spec.js";
import { planLoraPaths } from "./lora-paths.js";
import { chooseChunkWidth, chunkBlock } from "./lora-chunks.js";
import type { ChunkFeeds, FedRow, LoraChunkBank } from "./lora-bank.js";
import { appendRow, gatherRow, type NewEntries, type RowKvCache } from "./kv-cache.js";

/** Additive mask value for a forbidden key (finite, so fully-masked padding rows stay NaN-free). */
export const MASKED = -1e9;

export interface PackedRow {
  tokens: readonly number[];
  cache: RowKvCache | null;
  mix: ComposedMix | null;
}

export interface BatchShape {
  batch: number;
  /** Max new tokens S. */
  seq: number;
  /** Max cached length P. */
  past: number;
  /** Logit positions per row. */
  nLogits: number;
}

function intTensor(type: "int64" | "int32", values: number[], dims: number[]): HostTensor {
  return type === "int64" ? int64(BigInt64Array.from(values, (v) => BigInt(v)), dims) : int32(Int32Array.from(values), dims);
}

/** Token ids, positions, mask and logit positions for a batch. */
export function packTokens(spec: GraphSpec, rows: readonly PackedRow[], allLogits: boolean): { feeds: Record<string, HostTensor>; shape: BatchShape } {
  const B = rows.length;
  const S = Math.max(...rows.map((r) => r.tokens.length));
  const P = Math.max(...rows.map((r) => r.cache?.length ?? 0));
  const T = P + S;
  const ids: number[] = new Array(B * S).fill(0);
  const positions: number[] = new Array(B * S).fill(0);
  rows.forEach((row, i) => {
    const L = row.cache?.length ?? 0;
    for (let j = 0; j < S; j++) {
      if (j < row.tokens.length) ids[i * S + j] = row.tokens[j];
      positions[i * S + j] = L + Math.min(j, row.tokens.length - 1);
    }
  });
  const feeds: Record<string, HostTensor> = {};
  feeds[spec.inputIds.name] = intTensor(spec.inputIds.type, ids, [B, S]);
  if (spec.positionIds) feeds[spec.positionIds.name] = intTensor(spec.positionIds.type, positions, [B, S]);

  if (spec.mask.kind === "bias") {
    const bias = new Float32Array(B * S * T).fill(MASKED); // [B, 1, S, T]
    rows.forEach((row, i) => {
      const L = row.cache?.length ?? 0;
      for (let j = 0; j < S; j++) {
        const jj = Math.min(j, row.tokens.length - 1); // padding queries copy the last real one
        const base = (i * S + j) * T;
        for (let k = 0; k < L; k++) bias[base + k] = 0;
        for (let k = P; k <= P + jj; k++) bias[base + k] = 0;
      }
    });
    feeds[spec.mask.name] = float32(bias, [B, 1, S, T]);
  } else {
    const keys: number[] = new Array(B * T).fill(0); // [B, T]
    rows.forEach((row, i) => {
      const L = row.cache?.length ?? 0;
      for (let k = 0; k < L; k++) keys[i * T + k] = 1;
      for (let k = P; k < P + row.tokens.length; k++) keys[i * T + k] = 1;
    });
    feeds[spec.mask.name] = intTensor(spec.mask.type, keys, [B, T]);
  }

  // Without a logits_positions input the graph returns every position: [B, S, V].
  const nLogits = allLogits || !spec.logitsPositions ? S : 1;
  if (spec.logitsPositions) {
    const picks: number[] = [];
    for (const row of rows) {
      const n = row.tokens.length;
      for (let j = 0; j < nLogits; j++) picks.push(allLogits ? Math.min(j, n - 1) : n - 1);
    }
    feeds[spec.logitsPositions] = intTensor("int64", picks, [B, nLogits]);
  }
  return { feeds, shape: { batch: B, seq: S, past: P, nLogits } };
}

/** Number of floats packPast needs for this batch (all layers, keys and values). */
export function pastElements(spec: GraphSpec, shape: BatchShape): number {
  return spec.kv.layers * 2 * shape.batch * spec.kv.heads * shape.past * spec.kv.headDim;
}

/**
 * Batched past tensors: each row's cache left-aligned, zero padding after.
 * `arena` (≥ pastElements floats, any contents) is carved into the tensors when given, so a
 * variant can reuse one buffer instead of allocating (and page-faulting) it every step.
 */
export function packPast(spec: GraphSpec, rows: readonly PackedRow[], shape: BatchShape, arena?: Float32Array): Record<string, HostTensor> {
  const { batch: B, past: P } = shape;
  const { heads, headDim, layers } = spec.kv;
  const feeds: Record<string, HostTensor> = {};
  const half = B * heads * P * headDim;
  let used = 0;
  const take = (n: number): Float32Array => {
    if (!arena) return new Float32Array(n);
    const view = arena.subarray(used, used + n);
    used += n;
    // Zero the padding: slots [Lᵢ, P) of every row and head (whole rows without a cache).
    for (let part = 0; part < n / half; part++) {
      rows.forEach((row, i) => {
        const L = row.cache?.length ?? 0;
        if (L === P) return;
        for (let h = 0; h < heads; h++) {
          const base = part * half + ((i * heads + h) * P) * headDim;
          view.fill(0, base + L * headDim, base + P * headDim);
        }
      });
    }
    return view;
  };
  for (let layer = 0; layer < layers; layer++) {
    if (spec.kv.layout === "stacked") {
      const kv = take(2 * half); // [2, B, heads, P, hd]
      rows.forEach((row, i) => {
        if (!row.cache) return;
        gatherRow(kv, 0, i, P, row.cache.store.keys[layer], row.cache.store, row.cache.length);
        gatherRow(kv, half, i, P, row.cache.store.values[layer], row.cache.store, row.cache.length);
      });
      feeds[layerName(spec.kv.past, layer)] = float32(kv, [2, B, heads, P, headDim]);
    } else {
      const k = take(half); // [B, heads, P, hd]
      const v = take(half);
      rows.forEach((row, i) => {
        if (!row.cache) return;
        gatherRow(k, 0, i, P, row.cache.store.keys[layer], row.cache.store, row.cache.length);
        gatherRow(v, 0, i, P, row.cache.store.values[layer], row.cache.store, row.cache.length);
      });
      feeds[layerName(spec.kv.pastKey, layer)] = float32(k, [B, heads, P, headDim]);
      feeds[layerName(spec.kv.pastValue, layer)] = float32(v, [B, heads, P, headDim]);
    }
  }
  return feeds;
}

/** Names of the KV outputs to fetch, in layer order. */
export function presentNames(spec: GraphSpec): string[] {
  const names: string[] = [];
  for (let layer = 0; layer < spec.kv.layers; layer++) {
    if (spec.kv.layout === "separate") names.push(layerName(spec.kv.presentKey, layer), layerName(spec.kv.presentValue, layer));
    else if (spec.kv.layout === "separate-new") names.push(layerName(spec.kv.newKey, layer), layerName(spec.kv.newValue, layer));
    else names.push(layerName(spec.kv.present, layer));
  }
  return names;
}

/**
 * Each row's new cache: its previous cache plus its nᵢ new entries, read from the KV outputs
 * (full presents [B, heads, P+S, hd] hold them at [P, P+nᵢ); new-only outputs [B, heads, S, hd] at [0, nᵢ)).
 */
export function unpackPresent(owner: object, spec: GraphSpec, rows: readonly PackedRow[], shape: BatchShape, outputs: Record<string, HostTensor>): RowKvCache[] {
  const { batch: B, past: P, seq: S } = shape;
  const T = P + S;
  const { heads, headDim, layers } = spec.kv;
  const take = (name: string): Float32Array => {
    const t = outputs[name];
    if (!t || t.type !== "float32") throw new Error(`graph output ${name} missing or not float32`);
    return t.data;
  };
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (let layer = 0; layer < layers; layer++) {
    if (spec.kv.layout === "separate") {
      keys.push(take(layerName(spec.kv.presentKey, layer)));
      values.push(take(layerName(spec.kv.presentValue, layer)));
    } else if (spec.kv.layout === "separate-new") {
      keys.push(take(layerName(spec.kv.newKey, layer)));
      values.push(take(layerName(spec.kv.newValue, layer)));
    } else {
      const kv = take(layerName(spec.kv.present, layer));
      keys.push(kv);
      values.push(kv);
    }
  }
  const entries: NewEntries =
    spec.kv.layout === "separate-new"
      ? { keys, values, valueOffset: 0, extent: S, start: 0 }
      : { keys, values, valueOffset: spec.kv.layout === "stacked" ? B * heads * T * headDim : 0, extent: T, start: P };
  return rows.map((row, i) => appendRow(owner, row.cache, layers, heads, headDim, i, row.tokens.length, entries));
}

/**
 * The per-row path's rank chunks of one module, packed afresh (the reference for lora-bank.ts):
 * the fed rows in order, each as ⌈r/K⌉ chunks of chunkBlock(m, K), K = chooseChunkWidth(ranks).
 * `rowTensors` shares equal `rows` tensors across the modules of one step.
 */
export function packChunks(fed: readonly FedRow[], I: number, O: number, rowTensors: Map<string, HostTensor> = new Map()): ChunkFeeds {
  const K = chooseChunkWidth(fed.map((f) => f.m.rank));
  const blocks = fed.map((f) => chunkBlock(f.m, K));
  const N = blocks.reduce((n, b) => n + b.count, 0);
  const at = new Float32Array(N * I * K); // [N, in, K]
  const bt = new Float32Array(N * K * O); // [N, K, out]
  const owner: number[] = [];
  let n = 0;
  blocks.forEach((b, f) => {
    at.set(b.at, n * I * K);
    bt.set(b.bt, n * K * O);
    for (let c = 0; c < b.count; c++) owner.push(fed[f]!.row);
    n += b.count;
  });
  const key = `rows:${owner.join(",")}`;
  let rows = rowTensors.get(key);
  if (!rows) rowTensors.set(key, (rows = int64(BigInt64Array.from(owner, (v) => BigInt(v)), [N])));
  return { at: float32(at, [N, I, K]), bt: float32(bt, [N, K, O]), rows };
}

/**
 * The shared path's Ac [in, Rc] / Bc [Rc, out]: the unique mixes' factors side by side along the
 * rank axis. One mix alone is its own Aᵗ/Bᵗ (no copy: a mix is not written while a step reads it — its arrays go back to the buffer pool only when its last lease is released, at `reap()` after the step).
 * Semantics: ac[x, off_u + c] = u.at[x, c], bc[off_u + c, y] = u.bt[c, y], off_u = Σ ranks before u.
 * Cost: O(Σ (in + out)·r) float copies for ≥ 2 mixes, none for one.
 */
function sharedFactors(unique: readonly ComposedModule[], I: number, O: number, Rc: number): { ac: Float32Array; bc: Float32Array } {
  if (unique.length === 1) return { ac: unique[0]!.at, bc: unique[0]!.bt };
  const ac = new Float32Array(I * Rc); // [in, Rc]
  const bc = new Float32Array(Rc * O); // [Rc, out]
  // Row x of Ac is row x of every unique Aᵗ side by side: written in order (sequential stores).
  for (let x = 0, d = 0; x < I; x++) {
    for (const m of unique) {
      const r = m.rank;
      const src = m.at;
      const s = x * r;
      for (let c = 0; c < r; c++) ac[d + c] = src[s + c];
      d += r;
    }
  }
  for (let u = 0, off = 0; u < unique.length; u++) {
    bc.set(unique[u].bt, off * O); // [r, out] rows stacked
    off += unique[u].rank;
  }
  return { ac, bc };
}

/**
 * LoRA inputs for every unmerged target, rows split between the two paths by `shared` (default:
 * planLoraPaths, decode = every row has one token). Targets whose graph has no shared inputs
 * (graph.json written before they existed) put every row on the per-row path.
 * - per-row: row i's Aᵗ [in, rᵢ] / Bᵗ [rᵢ, out] zero-padded to R = the largest rank among the
 *   per-row rows (R = 0 when none touches the module); shared rows stay zero there.
 * - shared: the unique mixes of the shared rows (first-appearance order, those touching the
 *   module) side by side: Ac [in, Rc], Bc [Rc, out], Rc = Σ their ranks; Mk[i, 0, c] = 1 iff
 *   column c belongs to row i's mix.
 * Semantics: at[i, x, c] = mixᵢ.at[x, c] if ¬sharedᵢ ∧ c < rᵢ else 0; bt[i, c, y] likewise;
 *   ac[x, off_m + c] = m.at[x, c], bc[off_m + c, y] = m.bt[c, y], mk[i, 0, off_m + c] = [mixᵢ = m ∧ sharedᵢ];
 *   so for every row (x·at[i])·bt[i] + ((x·ac) ⊙ mk[i])·bc = (x·mixᵢ.at)·mixᵢ.bt.
 * `bank` (graphs with rank chunks): the per-row chunks come from its resident buffers (lora-bank.ts:
 * same products, O(changed rows) copies) instead of being packed afresh (the reference).
 * `options.minWidth` = 1 (execution providers that cannot take zero-size tensors, `padsZeroWidth`):
 * a path that would be fed R = 0 or Rc = 0 gets one zero column instead — exact, since that column
 * is zero in Aᵗ/Bᵗ (or Ac, Bc and the mask), so it adds 0 to every row.
 */
export function packLora(
  spec: GraphSpec,
  rows: readonly PackedRow[],
  dims: Map<string, { in: number; out: number }>,
  shared: readonly boolean[] = planLoraPaths(
    rows.map((r) => r.mix),
    rows.every((r) => r.tokens.length === 1),
  ),
  bank?: LoraChunkBank,
  options: PackLoraOptions = {},
): Record<string, HostTensor> {
  const B = rows.length;
  const minWidth = options.minWidth ?? 0;
  if (shared.length !== B) throw new Error(`packLora: ${shared.length} path flags for ${B} rows`);
  const feeds: Record<string, HostTensor> = {};
  /** Masks of equal column layout are one tensor (layouts repeat across modules). */
  const masks = new Map<string, HostTensor>();
  /** Chunk-row tensors likewise. */
  const chunkRows = new Map<string, HostTensor>();
  /**
   * No row on the shared path (distinct mixes under churn): every module's shared inputs are Rc = minWidth zero
   * columns and an all-zero mask — what the general path below builds then, without its per-row layout keys.
   */
  const noShared = !shared.some(Boolean);
  let zeroMask: HostTensor | undefined;
  for (const binding of spec.targets) {
    if (!binding.at || !binding.bt) continue;
    const size = dims.get(binding.module);
    if (!size) throw new Error(`no in/out sizes for target ${binding.module}`);
    const I = size.in;
    const O = size.out;
    const hasShared = binding.ac !== undefined && binding.bc !== undefined && binding.mask !== undefined;
    const onShared = (i: number) => hasShared && shared[i];

    if (binding.rows) {
      // Per-row path in rank chunks (lora-chunks.ts): only rows with a per-row mix here are fed.
      const fed: FedRow[] = [];
      rows.forEach((row, i) => {
        const m = onShared(i) ? undefined : row.mix?.modules.get(binding.module);
        if (m && m.rank > 0) fed.push({ row: i, m });
      });
      const chunks = bank ? bank.feed(binding.module, fed, I, O) : packChunks(fed, I, O, chunkRows);
      feeds[binding.at] = chunks.at;
      feeds[binding.bt] = chunks.bt;
      feeds[binding.rows] = chunks.rows;
    } else {
    // Per-row path, padded.
    let R: number = minWidth;
    rows.forEach((row, i) => {
      if (!onShared(i)) R = Math.max(R, row.mix?.modules.get(binding.module)?.rank ?? 0);
    });
    const at = new Float32Array(B * I * R); // [B, in, R]
    const bt = new Float32Array(B * R * O); // [B, R, out]
    if (R > 0) {
      rows.forEach((row, i) => {
        if (onShared(i)) return;
        const m = row.mix?.modules.get(binding.module);
        if (!m || m.rank === 0) return;
        const r = m.rank;
        const src = m.at;
        if (r === R) at.set(src, i * I * R); // same rank: one contiguous copy
        else {
          for (let x = 0; x < I; x++) {
            const d = (i * I + x) * R;
            const s = x * r;
            for (let c = 0; c < r; c++) at[d + c] = src[s + c];
          }
        }
        bt.set(m.bt, i * R * O); // [r, out] rows are contiguous; padding rows stay 0
      });
    }
    feeds[binding.at] = float32(at, [B, I, R]);
    feeds[binding.bt] = float32(bt, [B, R, O]);
    }
    if (!hasShared) continue;
    if (noShared) {
      feeds[binding.ac!] = float32(new Float32Array(I * minWidth), [I, minWidth]);
      feeds[binding.bc!] = float32(new Float32Array(minWidth * O), [minWidth, O]);
      feeds[binding.mask!] = zeroMask ??= float32(new Float32Array(B * minWidth), [B, 1, minWidth]);
      continue;
    }

    // Shared path: column offset of each unique mix touching the module.
    const offsets = new Map<ComposedMix, number>();
    const unique: ComposedModule[] = [];
    let Rc = 0;
    const layout: string[] = [];
    rows.forEach((row, i) => {
      const m = shared[i] ? row.mix?.modules.get(binding.module) : undefined;
      if (!row.mix || !m || m.rank === 0) {
        layout.push("");
        return;
      }
      let off = offsets.get(row.mix);
      if (off === undefined) {
        off = Rc;
        offsets.set(row.mix, off);
        unique.push(m);
        Rc += m.rank;
      }
      layout.push(`${off}+${m.rank}`);
    });
    if (Rc === 0) Rc = minWidth; // one zero column (no unique mix writes it) where zero-width inputs are refused
    const { ac, bc } = sharedFactors(unique, I, O, Rc);
    const key = `${Rc}|${layout.join(",")}`;
    let mask = masks.get(key);
    if (!mask) {
      const mk = new Float32Array(B * Rc); // [B, 1, Rc]
      rows.forEach((row, i) => {
        const m = shared[i] && row.mix ? row.mix.modules.get(binding.module) : undefined;
        if (!row.mix || !m || m.rank === 0) return;
        const o = offsets.get(row.mix)!;
        mk.fill(1, i * Rc + o, i * Rc + o + m.rank);
      });
      mask = float32(mk, [B, 1, Rc]);
      masks.set(key, mask);
    }
    feeds[binding.ac!] = float32(ac, [I, Rc]);
    feeds[binding.bc!] = float32(bc, [Rc, O]);
    feeds[binding.mask!] = mask;
  }
  return feeds;
}

export interface PackLoraOptions {
  /** 1: never a zero-width rank axis on the padded per-row path or the shared path (see packLora). */
  minWidth?: 0 | 1;
}

/**
 * Whether an execution provider is fed zero-width LoRA inputs (R = 0 / Rc = 0) as they are. Only the
 * CPU EPs are known to take them (both backends' tests run them); onnxruntime-node 1.30's WebGPU EP
 * crashes the process (SIGSEGV) on a step whose shared path has Rc = 0 (seen on an H200 through Dawn/
 * Vulkan, 2026-11-30), so every other EP gets one zero column instead.
 */
export function padsZeroWidth(executionProvider: string | undefined): boolean {
  return (executionProvider ?? "cpu") !== "cpu";
}

/**
 * Row i's logits out of [B, nLogits, V]: allLogits → its first nᵢ positions, else its last one
 * (position 0 when the graph picked it, nᵢ − 1 when the graph returned every position).
 */
export function unpackLogits(spec: GraphSpec, rows: readonly PackedRow[], shape: BatchShape, logits: Float32Array, vocab: number, allLogits: boolean): Float32Array[] {
  if (logits.length !== shape.batch * shape.nLogits * vocab) throw new Error(`logits have ${logits.length} values, expected [${shape.batch}, ${shape.nLogits}, ${vocab}]`);
  return rows.map((row, i) => {
    const n = allLogits ? row.tokens.length : 1;
    const first = allLogits || spec.logitsPositions ? 0 : row.tokens.length - 1;
    const start = (i * shape.nLogits + first) * vocab;
    return logits.slice(start, start + n * vocab);
  });
}
