/**
 * Two resident chunk banks (lora-bank.ts) per model variant, and which one a step packs into.
 *
 * Under continuous batching, decode steps (the running rows) and prefill steps (the joining rows)
 * alternate; with one bank each would evict the other's rows every step. A fixed role per bank
 * ("the decode bank") is not enough either: a step's kind cannot be told from its rows (a prompt's
 * last token, left over when the prefill budget splits a prompt, is one token per row like a decode
 * token), so a one-row prefill step fed into the decode bank evicted every running row, and the
 * next decode step wrote them all again — the full repacks behind bench case 9's p99 gaps (a decode
 * step at 63 rows writing 466 M floats, 0.8–2 s, right after a one-token prefill step).
 *
 * Semantics: each bank remembers the multiset of per-row mixes of its last feed. A step takes the
 * bank with the least placement cost, Σ_mix maxRank(mix) · (max(0, wanted − held) + [mix live] ·
 * max(0, held − wanted)): the ranks it would write (joining rows) plus those it would evict of rows
 * still live (fed in one of the last two LoRA steps, packed or reused, so most likely fed again;
 * a bank's rows that no recent step fed are free to evict); ties → the first bank. So a batch's first decode step after
 * a joint prefill takes the bank that prefill filled (nothing written), a prefill step takes the
 * bank not holding the running rows, and a one-token prefill step keeps off the running rows' bank.
 * The choice only decides where chunks are copied: every bank gives the same products (lora-bank.ts).
 * Cost: O(distinct mixes of the step + of both banks) per step.
 */
import type { ComposedMix } from "#core/lora/types";
import { LoraChunkBank } from "./lora-bank.js";

type MixCounts = Map<ComposedMix, number>;

function countMixes(mixes: readonly ComposedMix[]): MixCounts {
  const counts: MixCounts = new Map();
  for (const mix of mixes) counts.set(mix, (counts.get(mix) ?? 0) + 1);
  return counts;
}

/** Ranks written plus live ranks evicted when a bank holding `held` is fed `wanted` (see the file's Semantics). */
export function placementCost(held: ReadonlyMap<ComposedMix, number>, wanted: ReadonlyMap<ComposedMix, number>, live: (mix: ComposedMix) => boolean): number {
  let cost = 0;
  for (const [mix, n] of wanted) cost += mix.maxRank * Math.max(0, n - (held.get(mix) ?? 0));
  for (const [mix, n] of held) if (live(mix)) cost += mix.maxRank * Math.max(0, n - (wanted.get(mix) ?? 0));
  return cost;
}

export class LoraBankPair {
  private readonly banks = [new LoraChunkBank(), new LoraChunkBank()] as const;
  /** Per bank: the per-row mixes of its last feed (empty after a failed one). */
  private readonly held: MixCounts[] = [new Map(), new Map()];
  /** The per-row mixes of the last two steps (newest last): the live rows. */
  private recent: MixCounts[] = [];

  /**
   * The bank a step whose per-row path carries `mixes` (one entry per fed row) packs into; from
   * now on that bank is taken to hold them (call `failed` if the feed throws).
   */
  take(mixes: readonly ComposedMix[]): LoraChunkBank {
    const wanted = countMixes(mixes);
    const live = (mix: ComposedMix) => this.recent.some((r) => r.has(mix));
    const i = placementCost(this.held[1]!, wanted, live) < placementCost(this.held[0]!, wanted, live) ? 1 : 0;
    this.held[i] = wanted;
    this.remember(wanted);
    return this.banks[i];
  }

  /** A step that reused the last feeds (same rows): its rows stay live. */
  reused(mixes: readonly ComposedMix[]): void {
    this.remember(countMixes(mixes));
  }

  private remember(step: MixCounts): void {
    this.recent = [this.recent.at(-1) ?? new Map(), step];
  }

  /** A feed into `bank` threw part-way: what it holds is unknown (its modules clear themselves). */
  failed(bank: LoraChunkBank): void {
    this.held[this.banks.indexOf(bank)] = new Map();
  }

  /** Floats copied into both banks so far. */
  get copiedFloats(): number {
    return this.banks[0].copiedFloats + this.banks[1].copiedFloats;
  }

  clear(): void {
    for (const bank of this.banks) bank.clear();
    this.held.forEach((_, i) => (this.held[i] = new Map()));
    this.recent = [];
  }
}
