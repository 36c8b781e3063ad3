/**
 * Next-token selection from one row's logits. The parameters are core's `SamplingParams`
 * (core/src/wire/sampling.ts) as the request carried them.
 *
 * Semantics (in this order; every step in float32, one store per step, as the references):
 *   logit_bias                 → logits[id] += bias[id]
 *   repetition_penalty p ≠ 1   → for every id in prompt ∪ output: logits[id] = logits[id] > 0 ? logits[id] / p : logits[id] · p
 *   presence/frequency         → for every id in the output, seen c times: logits[id] −= frequency·c + presence
 *   temperature = 0            → argmax(logits) (lowest id wins ties)
 *   otherwise  p = softmax(logits / temperature); keep the top_k most probable tokens
 *              (top_k = 0: all) and renormalise over them; then keep the smallest prefix of
 *              them, by descending p, whose renormalised mass is ≥ top_p (top-k before top-p,
 *              as Hugging Face's warpers and vLLM do); draw u ~ U[0,1) from the row's seeded
 *              RNG and return the first kept token whose cumulative p exceeds u·Σ(kept p).
 * Logprobs reported to clients are log_softmax of the raw logits (before temperature/top-k/top-p).
 */
import type { Rng } from "#core/random/index";
import type { SamplingParams } from "#core/wire/sampling";

export type { SamplingParams };

/**
 * The tokens one row has seen (prompt, then output), kept incrementally so the penalties
 * touch only those ids.
 */
export class TokenHistory {
  readonly outputIds: number[] = [];
  /** Output id → occurrences. */
  readonly outputCounts = new Map<number, number>();
  private promptSet: Set<number> | null = null;

  constructor(readonly promptIds: readonly number[]) {}

  push(id: number): void {
    this.outputIds.push(id);
    this.outputCounts.set(id, (this.outputCounts.get(id) ?? 0) + 1);
  }

  /** Distinct ids of prompt ∪ output (built on first use: only repetition_penalty needs the prompt). */
  forEachSeen(fn: (id: number) => void): void {
    this.promptSet ??= new Set(this.promptIds);
    for (const id of this.promptSet) fn(id);
    for (const id of this.outputCounts.keys()) if (!this.promptSet.has(id)) fn(id);
  }
}

const penaltiesActive = (p: SamplingParams) =>
  p.logit_bias !== undefined || p.repetition_penalty !== 1 || p.presence_penalty !== 0 || p.frequency_penalty !== 0;

/**
 * logit_bias, repetition, presence and frequency penalties (Semantics above) on a copy of the
 * logits; the logits themselves when none is active.
 * Cost: O(|bias| + |distinct prompt ∪ output ids|) plus one copy of the row (memcpy of V floats);
 * `applyPenaltiesReference` is O(V).
 */
export function applyPenalties(logits: Float32Array, params: SamplingParams, history: TokenHistory | null): Float32Array {
  if (!penaltiesActive(params)) return logits;
  const out = logits.slice(); // [vocab]
  const vocab = out.length;
  if (params.logit_bias) {
    for (const [key, bias] of Object.entries(params.logit_bias)) {
      const id = Number(key);
      if (id < vocab) out[id] = out[id]! + bias;
    }
  }
  if (!history) return out;
  const rp = params.repetition_penalty;
  if (rp !== 1) {
    history.forEachSeen((id) => {
      if (id < vocab) out[id] = out[id]! > 0 ? out[id]! / rp : out[id]! * rp;
    });
  }
  const { presence_penalty: presence, frequency_penalty: frequency } = params;
  if (presence !== 0 || frequency !== 0) {
    for (const [id, count] of history.outputCounts) if (id < vocab) out[id] = out[id]! - (frequency * count + presence);
  }
  return out;
}

/** Reference for `applyPenalties`: the Semantics as one plain loop over the vocabulary. */
export function applyPenaltiesReference(
  logits: Float32Array,
  params: SamplingParams,
  history: { promptIds: readonly number[]; outputIds: readonly number[] } | null,
): Float32Array {
  const vocab = logits.length;
  const out = Float32Array.from(logits);
  const inPrompt = new Array<boolean>(vocab).fill(false);
  const counts = new Array<number>(vocab).fill(0);
  for (const id of history?.promptIds ?? []) if (id < vocab) inPrompt[id] = true;
  for (const id of history?.outputIds ?? []) if (id < vocab) counts[id]! += 1;
  for (let id = 0; id < vocab; id++) {
    const bias = params.logit_bias?.[String(id)];
    if (bias !== undefined) out[id] = out[id]! + bias;
    if (inPrompt[id] || counts[id]! > 0) {
      const rp = params.repetition_penalty;
      out[id] = out[id]! > 0 ? out[id]! / rp : out[id]! * rp;
    }
    if (counts[id]! > 0) out[id] = out[id]! - (params.frequency_penalty * counts[id]! + params.presence_penalty);
  }
  return out;
}

export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** log_softmax(logits)  [vocab], in float64 for stable sums. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - logZ;
  return out;
}

/** Orders ids by descending value, lowest id first on ties. */
const byValueDesc = (values: ArrayLike<number>) => (a: number, b: number) => values[b]! - values[a]! || a - b;

/**
 * Reference for `topIndices`: sort every id.
 * Semantics: ids sorted by (value descending, id ascending), first k.
 */
export function topIndicesReference(values: ArrayLike<number>, k: number): number[] {
  const ids = Array.from({ length: values.length }, (_, i) => i);
  ids.sort(byValueDesc(values));
  return ids.slice(0, Math.max(0, k));
}

/**
 * Token ids of the `k` largest entries, by descending value (lowest id first on ties): equal
 * to `topIndicesReference`, in O(V + k log k) for k ≪ V (threshold by quickselect on a copy,
 * then sort only the survivors) instead of O(V log V).
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const n = values.length;
  if (k <= 0) return [];
  if (k >= n || n <= 512) return topIndicesReference(values, k);
  // k-th largest value (quickselect on a copy, descending).
  const copy = Float64Array.from(values as ArrayLike<number>);
  let lo = 0;
  let hi = n - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = copy[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (copy[i]! > pivot) i++;
      while (copy[j]! < pivot) j--;
      if (i <= j) {
        const t = copy[i]!;
        copy[i] = copy[j]!;
        copy[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  const threshold = copy[target]!;
  const survivors: number[] = [];
  for (let id = 0; id < n; id++) if (values[id]! >= threshold) survivors.push(id);
  survivors.sort(byValueDesc(values));
  return survivors.slice(0, k);
}

export function sampleToken(raw: Float32Array, params: SamplingParams, rng: Rng, history: TokenHistory | null = null): number {
  const logits = applyPenalties(raw, params, history);
  if (params.temperature === 0) return argmax(logits);
  const vocab = logits.length;
  const scaled = new Float64Array(vocab);
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) {
    scaled[i] = logits[i]! / params.temperature;
    if (scaled[i]! > max) max = scaled[i]!;
  }
  let total = 0;
  for (let i = 0; i < vocab; i++) {
    scaled[i] = Math.exp(scaled[i]! - max);
    total += scaled[i]!;
  }
  // Candidates by descending probability (only needed when a filter is active). For top_p
  // alone, the nucleus is found among the top m ids, m growing ×4 until it holds mass ≥ top_p.
  let candidates: number[];
  if (params.top_k > 0 || params.top_p < 1) {
    let m = params.top_k > 0 ? Math.min(params.top_k, vocab) : Math.min(64, vocab);
    for (;;) {
      candidates = topIndices(scaled, m);
      if (params.top_p >= 1 || params.top_k > 0 || m === vocab) break;
      let mass = 0;
      for (const id of candidates) mass += scaled[id]!;
      if (mass / total >= params.top_p) break;
      m = Math.min(vocab, m * 4);
    }
    if (params.top_p < 1) {
      // top_p's mass is measured after top_k's renormalisation.
      let base = total;
      if (params.top_k > 0) {
        base = 0;
        for (const id of candidates) base += scaled[id]!;
      }
      let mass = 0;
      let keep = 0;
      while (keep < candidates.length) {
        mass += scaled[candidates[keep]!]! / base;
        keep++;
        if (mass >= params.top_p) break;
      }
      candidates = candidates.slice(0, keep);
    }
  } else {
    candidates = Array.from({ length: vocab }, (_, i) => i);
  }
  let kept = 0;
  for (const id of candidates) kept += scaled[id]!;
  const target = rng.nextFloat() * kept;
  let cumulative = 0;
  for (const id of candidates) {
    cumulative += scaled[id]!;
    if (cumulative > target) return id;
  }
  return candidates[candidates.length - 1]!;
}

/**
 * Reference for `sampleToken`: the Semantics above with a full sort of the vocabulary.
 * Same draws as `sampleToken` for the same RNG state.
 */
export function sampleTokenReference(
  raw: Float32Array,
  params: SamplingParams,
  rng: Rng,
  history: { promptIds: readonly number[]; outputIds: readonly number[] } | null = null,
): number {
  const logits = applyPenaltiesReference(raw, params, history);
  if (params.temperature === 0) return argmax(logits);
  const scaled = Array.from(logits, (v) => v / params.temperature);
  const max = Math.max(...scaled);
  const p = scaled.map((v) => Math.exp(v - max));
  const total = p.reduce((a, b) => a + b, 0);
  let ids = topIndicesReference(p, params.top_k > 0 ? params.top_k : p.length);
  if (params.top_p < 1) {
    const base = params.top_k > 0 ? ids.reduce((a, id) => a + p[id]!, 0) : total;
    let mass = 0;
    let keep = 0;
    while (keep < ids.length) {
      mass += p[ids[keep]!]! / base;
      keep++;
      if (mass >= params.top_p) break;
    }
    ids = ids.slice(0, keep);
  }
  if (params.top_k === 0 && params.top_p >= 1) ids = Array.from({ length: p.length }, (_, i) => i);
  const kept = ids.reduce((a, id) => a + p[id]!, 0);
  const target = rng.nextFloat() * kept;
  let cumulative = 0;
  for (const id of ids) {
    cumulative += p[id]!;
    if (cumulative > target) return id;
  }
  return ids[ids.length - 1]!;
}
