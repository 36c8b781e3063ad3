/**
 * The "auto" merge policy as pure functions: when a mix is hot enough to get a merged session
 * (W′ = W + ΔW), and which idle merged session to give up first. `MergeManager` keeps the
 * bookkeeping (demand per mix, step timings, the sessions in a leased LRU) and asks these.
 *
 * Semantics (every input measured at run time):
 *   demand(mix)        = exponentially decayed generated tokens/s of the mix (τ = 10 s)
 *   overhead/token     = per-row decode ms with LoRA inputs − per-row decode ms without (EWMA);
 *                        0.2 × the LoRA row's ms while no plain row has been measured
 *   build cost         = EWMA of measured merged builds (delta + session), initially estimated
 *                        from the model's weight bytes (100 ms + 5 ms per MiB)
 *   merge when         demand · overhead · horizon ≥ build cost, and a session fits the budget
 *   evict first        the idle session whose loss is smallest, loss = min(demand · overhead ·
 *                      horizon, its own build ms): what its mix will cost over the horizon
 *                      without it, served unmerged or rebuilt, whichever is cheaper. Ties (e.g.
 *                      no demand measured) go least recently used first.
 */

/** Exponentially decayed rate: `rate` measured at `at` (ms), seen at `now` (ms). */
export function decayedRate(rate: number, at: number, now: number, tauS: number): number {
  return rate * Math.exp(-(now - at) / 1000 / tauS);
}

/** A rate after `tokens` more arrive at `now`: decayed, plus tokens / τ. */
export function addTokens(rate: number, at: number, now: number, tokens: number, tauS: number): number {
  return decayedRate(rate, at, now, tauS) + tokens / tauS;
}

/**
 * Below this decayed demand a mix's record can be forgotten: at 0.01 tok/s, even 10 ms of LoRA
 * overhead per token over a 30 s horizon saves 3 ms, less than any merged build costs, so no
 * decision changes (a forgotten mix has demand 0).
 */
export const FORGET_BELOW_TOKENS_PER_S = 0.01;

export interface MergeEstimates {
  /** Expected ms of one merged build (delta + session). */
  buildMs: number;
  /** Per-row decode ms with LoRA inputs − without. */
  overheadMsPerToken: number;
  /** Weight bytes of one merged session. */
  sessionBytes: number;
}

export interface MeasuredCosts {
  /** EWMA of per-row decode ms in steps with LoRA rows; null until one is measured. */
  mixedRowMs: number | null;
  /** EWMA of per-row decode ms in steps without; null until one is measured. */
  plainRowMs: number | null;
  /** EWMA of measured builds; null until one is built. */
  buildMs: number | null;
  sessionBytes: number;
}

/** The policy's inputs from what has been measured so far. */
export function mergeEstimates(m: MeasuredCosts): MergeEstimates {
  const buildMs = m.buildMs ?? 100 + (5 * m.sessionBytes) / 2 ** 20;
  let overheadMsPerToken = 0;
  if (m.mixedRowMs !== null) {
    overheadMsPerToken = m.plainRowMs !== null ? Math.max(0, m.mixedRowMs - m.plainRowMs) : 0.2 * m.mixedRowMs;
  }
  return { buildMs, overheadMsPerToken, sessionBytes: m.sessionBytes };
}

export interface MergeDecision {
  merge: boolean;
  /** demand · overhead · horizon: LoRA overhead (ms) the merge is expected to save. */
  benefitMs: number;
}

/** Whether a mix with this demand should get a merged session now. */
export function decideMerge(demandTokensPerS: number, estimates: MergeEstimates, horizonS: number, budgetBytes: number): MergeDecision {
  const benefitMs = demandTokensPerS * estimates.overheadMsPerToken * horizonS;
  return { merge: estimates.sessionBytes <= budgetBytes && benefitMs >= estimates.buildMs, benefitMs };
}

export interface IdleMergedSession {
  demandTokensPerS: number;
  /** Measured build ms of this session (what a rebuild costs). */
  buildMs: number;
}

/** ms the mix is expected to lose over the horizon if its session goes (see Semantics). */
export function evictionLossMs(s: IdleMergedSession, overheadMsPerToken: number, horizonS: number): number {
  return Math.min(s.demandTokensPerS * overheadMsPerToken * horizonS, s.buildMs);
}

/** Idle sessions (given least recently used first) in the order to evict them: smallest loss first. */
export function evictionOrder<T extends IdleMergedSession>(idleLruFirst: readonly T[], overheadMsPerToken: number, horizonS: number): T[] {
  return idleLruFirst
    .map((s, lru) => ({ s, lru, loss: evictionLossMs(s, overheadMsPerToken, horizonS) }))
    .sort((x, y) => x.loss - y.loss || x.lru - y.lru)
    .map((x) => x.s);
}
