/**
 * Rendezvous (highest-random-weight) hashing: every runner gets a score for a key; the
 * ranking by score is stable, and removing a runner only moves the keys it ranked first.
 *
 * Semantics: score(key, runner) = fnv1a64(key + "\n" + runner); rank = runners sorted by
 * score descending (ties broken by runner string).
 */
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;
const encoder = new TextEncoder();

/** FNV-1a 64-bit over UTF-8 bytes. */
export function fnv1a64(s: string): bigint {
  let h = FNV_OFFSET;
  for (const b of encoder.encode(s)) {
    h ^= BigInt(b);
    h = (h * FNV_PRIME) & MASK;
  }
  return h;
}

/** A final avalanche (splitmix64 finaliser), so similar inputs spread evenly. */
function mix64(x: bigint): bigint {
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK;
  return x ^ (x >> 31n);
}

export function rendezvousScore(key: string, runner: string): bigint {
  return mix64(fnv1a64(`${key}\n${runner}`));
}

/** Runners ordered by preference for `key` (first = owner). */
export function rendezvousRank(key: string, runners: readonly string[]): string[] {
  return runners
    .map((r) => ({ r, s: rendezvousScore(key, r) }))
    .sort((x, y) => (x.s === y.s ? (x.r < y.r ? -1 : 1) : x.s > y.s ? -1 : 1))
    .map((x) => x.r);
}

/**
 * Routing key of a request: the model plus the mix's canonical key (core/src/wire/mix-key.ts),
 * so every spelling of one mix ({a,b}, {b,a}, {a:½,b,a:½}) goes to the same runner, which then
 * composes it once.
 */
export function mixRoutingKey(model: string, canonicalKey: string): string {
  return `${model}|${canonicalKey}`;
}
