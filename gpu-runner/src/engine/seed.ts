/**
 * Request seeds → the sampling RNG (core's xoshiro128**, identical on every platform).
 * Semantics: seed ≥ 0 → createRng(seed); seed < 0 → createRng(deriveSeed(−seed, "negative"));
 * no seed → a random non-negative 31-bit seed.
 */
import { createRng, deriveSeed, type Rng } from "#core/random/index";

export function rngForSeed(seed: number): Rng {
  return createRng(seed >= 0 ? seed : deriveSeed(-seed, "negative"));
}

export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
