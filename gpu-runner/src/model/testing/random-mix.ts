/**
 * Test support (imported by tests only): seeded random composed mixes and error measures.
 */
import type { ComposedMix, ComposedModule } from "#core/lora/types";
import { createRng } from "#core/random/index";

/** Floats in [0, 1) from core's seeded generator (the same streams every part of the project draws). */
export function seededRandom(seed: number): () => number {
  const rng = createRng(seed);
  return () => rng.nextFloat();
}

/** A mix with the given rank per module, entries U(−scale, scale). */
export function randomMix(targets: readonly { module: string; in: number; out: number }[], ranks: (module: string) => number, seed: number, scale = 0.2): ComposedMix {
  const rand = seededRandom(seed);
  const modules = new Map<string, ComposedModule>();
  let maxRank = 0;
  for (const t of targets) {
    const rank = ranks(t.module);
    if (rank <= 0) continue;
    const at = Float32Array.from({ length: t.in * rank }, () => (rand() * 2 - 1) * scale);
    const bt = Float32Array.from({ length: rank * t.out }, () => (rand() * 2 - 1) * scale);
    modules.set(t.module, { module: t.module, rank, inFeatures: t.in, outFeatures: t.out, at, bt });
    maxRank = Math.max(maxRank, rank);
  }
  return { modules, maxRank };
}

/** max |a − b| / max |b|. */
export function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`relErr: lengths ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}
