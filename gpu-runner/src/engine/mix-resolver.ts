/**
 * A request's `adapters: [{id, sha256, weight}]` → a composed mix the model can run: leases
 * every adapter (pinned while the request runs), checks it against the model's manifest,
 * composes it with core's exact "cat" composition, and names it.
 */
import type { LoraFactor } from "#core/lora/factor";
import type { ComposedMix, LoraAdapter } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { checkCompatibility } from "#core/compat/index";
import { composeMix, MixError } from "#core/compose/index";
import { canonicalMix } from "#core/wire/mix-key";
import type { WireMixEntry } from "#core/wire/runner-api";
import { LeasedLru, type LeasedLruStats } from "../cache/leased-lru.js";
import { FloatBufferPool, type FloatBufferPoolStats } from "../cache/float-buffer-pool.js";
import { EngineError } from "./errors.js";
import { loraFactorProblem, MAX_LORA_FACTOR } from "../model/lora-factors.js";
import type { MixHandle } from "./merge-manager.js";

export interface AdapterProvider {
  acquire(id: string, sha256: string): Promise<{ adapter: LoraAdapter<LoraFactor>; release(): void }>;
}

/** Refuses an adapter that does not fit the model (core's checkCompatibility: modules, sizes, rank cap, layout). */
export function checkCompatible(id: string, adapter: LoraAdapter<LoraFactor>, manifest: ModelManifest): void {
  const report = checkCompatibility(adapter, manifest);
  if (report.ok) return;
  const shown = report.errors.slice(0, 5).join("; ") + (report.errors.length > 5 ? `; and ${report.errors.length - 5} more` : "");
  throw new EngineError("incompatible_adapter", `adapter ${id} does not fit model ${manifest.id}: ${shown}`);
}

/** Bytes of a composed mix's factors. */
function composedMixBytes(mix: ComposedMix): number {
  let n = 0;
  for (const m of mix.modules.values()) n += m.at.byteLength + m.bt.byteLength;
  return n;
}

/** A lease on a pooled mix. */
export interface PooledMix {
  mix: ComposedMix;
  release(): void;
  /** One more lease on the same mix (e.g. a background merge reading it after the request left); call its release once done. */
  hold(): () => void;
}

/** How long the composed-mix pool keeps free buffers once no mix is live (ComposedMixPool). */
export const MIX_BUFFERS_IDLE_RELEASE_MS = 30_000;

/**
 * Composed mixes shared by the requests that use them at the same time (one Aᵗ/Bᵗ copy per
 * live mix instead of one per request): the runner's leased LRU with a budget of 0, so a mix is
 * composed once however many requests arrive together (single flight) and dropped when its
 * last lease is released. A dropped mix's arrays go to `buffers` (cache/float-buffer-pool.ts),
 * which `compose` receives as its allocator: the next mixes are composed into them instead of
 * fresh memory. Free buffers + live mixes stay within the most live mix bytes ever held at once
 * (the pool never makes the runner hold more than its busiest moment did), and are dropped once no
 * mix has been live for MIX_BUFFERS_IDLE_RELEASE_MS (the peak is then forgotten too).
 * Whoever reads a mix's arrays holds a lease (the requests running it; `hold` for anyone else):
 * once the last is released the arrays belong to the next composition.
 */
export class ComposedMixPool {
  private peakBytes = 0;
  /** Gives the free buffers back once no mix has been live for `idleReleaseMs` (a timer, unref'd). */
  private idleTimer: ReturnType<typeof setTimeout> | null = null;

  /**
   * @param idleReleaseMs once no mix is live for this long, the free buffers are dropped and the
   *   peak forgotten: a spike (64 distinct mixes: ≈ 2.2 GB on loraedge-small) is not held for good.
   */
  constructor(private readonly idleReleaseMs = MIX_BUFFERS_IDLE_RELEASE_MS) {}

  private readonly live: LeasedLru<ComposedMix> = new LeasedLru<ComposedMix>({
    budgetBytes: 0,
    sizeOf: composedMixBytes,
    onEvict: (_key, mix) => this.recycle(mix),
  });
  private readonly buffers = new FloatBufferPool(() => this.peakBytes - this.live.stats().bytes);

  /**
   * The mix for `key`, composed by `compose` unless live (`compose` gets the allocator of reused
   * buffers: pass it to core's composeMix); a throw fails every waiter, pools nothing.
   */
  async acquire(key: string, compose: (alloc: (length: number) => Float32Array) => ComposedMix): Promise<PooledMix> {
    this.cancelIdleRelease();
    const lease = await this.live.acquire(key, () => compose((length) => this.buffers.take(length)));
    this.peakBytes = Math.max(this.peakBytes, this.live.stats().bytes);
    return {
      mix: lease.value,
      release: lease.release,
      hold: () => this.live.tryAcquire(key)?.release ?? (() => {}),
    };
  }

  /** Gives a mix's arrays to the next compositions: only once nobody reads them (the pool's last lease released, or never pooled). */
  recycle(mix: ComposedMix): void {
    this.buffers.give([...mix.modules.values()].flatMap((m) => [m.at, m.bt]));
    if (this.live.size === 0) this.scheduleIdleRelease();
  }

  private scheduleIdleRelease(): void {
    this.cancelIdleRelease();
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.live.size > 0) return;
      this.buffers.clear();
      this.peakBytes = 0;
    }, this.idleReleaseMs);
    this.idleTimer.unref?.();
  }

  private cancelIdleRelease(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** The free buffers kept for the next compositions. */
  bufferStats(): FloatBufferPoolStats {
    return this.buffers.stats();
  }

  get size(): number {
    return this.live.size;
  }

  /** For /metrics: live mixes (`entries`), their bytes, compositions so far (`loads`). */
  stats(): LeasedLruStats {
    return this.live.stats();
  }
}

export interface ResolvedMix {
  /** null when the mix is empty or every weight is 0 (the base model). */
  handle: MixHandle | null;
  release(): void;
}

/**
 * Resolves a request's mix in its canonical form (core's canonicalMix: repeats merged, zero
 * weights dropped, ordered by id), so {a,b} and {b,a} are one key and compose once. `claimedKey`
 * is the edge's `mix_key`: a key that disagrees with the entries is refused (400), never trusted.
 */
export async function resolveMix(
  entries: readonly WireMixEntry[],
  manifest: ModelManifest,
  adapters: AdapterProvider | null,
  pool: ComposedMixPool = new ComposedMixPool(),
  claimedKey?: string,
): Promise<ResolvedMix> {
  const { entries: active, key } = canonicalMix(entries);
  if (claimedKey !== undefined && claimedKey !== key) {
    throw new EngineError("invalid_request_error", "mix_key does not match the adapters of the request (it must be core's canonical key of them)");
  }
  if (active.length === 0) return { handle: null, release: () => {} };
  if (!adapters) throw new EngineError("service_unavailable_error", "this runner has no adapter source configured");
  const settled = await Promise.allSettled(active.map((e) => adapters.acquire(e.id, e.sha256)));
  const leases = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const releases: (() => void)[] = leases.map((l) => () => l.release());
  const release = () => releases.forEach((r) => r());
  try {
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    active.forEach((e, i) => checkCompatible(e.id, leases[i]!.adapter, manifest));
    let mix: ComposedMix;
    let hold: () => () => void;
    try {
      const shared = await pool.acquire(key, (alloc) => {
        // The bound verified as it composes (in the SIMD workspace): loraFactorProblem then needs no pass of its own.
        const composed = composeMix(active.map((e, i) => ({ adapter: leases[i]!.adapter, weight: e.weight })), { alloc, bound: MAX_LORA_FACTOR });
        // Refused before it can join a batch (never pooled): ∞ in one row's factors must not meet other rows.
        const problem = loraFactorProblem(composed);
        if (problem) {
          pool.recycle(composed);
          throw new EngineError("unprocessable_entity_error", `the mix overflows float32 and cannot be served: ${problem}; lower the mix weights`);
        }
        return composed;
      });
      releases.push(shared.release);
      mix = shared.mix;
      hold = shared.hold;
    } catch (e) {
      if (e instanceof MixError) throw new EngineError("unprocessable_entity_error", `the mix cannot be composed: ${e.message}`);
      throw e;
    }
    const mergeOnly = new Set(manifest.targets.filter((t) => t.mode === "merge-only").map((t) => t.module));
    const mergeOnlyModules = [...mix.modules.keys()].filter((m) => mergeOnly.has(m));
    if (mix.modules.size === 0) return { handle: null, release };
    return { handle: { key, mix, mergeOnlyModules, hold }, release };
  } catch (e) {
    release();
    throw e;
  }
}
