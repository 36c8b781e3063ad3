/**
 * Remembers the signatures a receiver accepted until they leave the validity window, so a
 * signed request is served at most once (core/src/wire/hmac.ts). Bounded memory: at most
 * `capacity` live signatures; when that many are live, new requests are refused ("full")
 * rather than forgetting a live one (which would reopen it to replay).
 *
 * Semantics: claim(sig, expiresAt, now) is "ok" exactly once per sig while now < expiresAt;
 * "replayed" for every later claim of it. Cost: O(1) amortised (expired entries are dropped
 * from the front of the insertion order; a full sweep only when the capacity is reached).
 */
export type ClaimResult = "ok" | "replayed" | "full";

export const DEFAULT_REPLAY_GUARD_CAPACITY = 100_000;

export class ReplayGuard {
  /** signature → expiry (unix seconds), in insertion order. */
  private readonly seen = new Map<string, number>();

  constructor(readonly capacity = DEFAULT_REPLAY_GUARD_CAPACITY) {}

  get size(): number {
    return this.seen.size;
  }

  claim(signature: string, expiresAt: number, now: number = Math.floor(Date.now() / 1000)): ClaimResult {
    const sig = signature.toLowerCase();
    this.dropExpiredFront(now);
    const known = this.seen.get(sig);
    if (known !== undefined && known > now) return "replayed";
    if (this.seen.size >= this.capacity) {
      for (const [k, exp] of this.seen) if (exp <= now) this.seen.delete(k);
      if (this.seen.size >= this.capacity) return "full";
    }
    this.seen.set(sig, expiresAt);
    return "ok";
  }

  private dropExpiredFront(now: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > now) return;
      this.seen.delete(k);
    }
  }
}
