/**
 * Bakes a weighted mix into a new adapter on the runner (issue #12: the worker's isolate cannot
 * hold dense strategies on large targets) and measures it against the exact mix on the model.
 *
 * request → leases on every adapter (the runner's adapter cache, fetched from the edge) →
 * compatibility with the model → exact mix (core's composeMix) → bake on a worker thread →
 * the returned PEFT files parsed back (what will be stored is what is measured) → fidelity on the
 * probe set → response. Leases are released on every path.
 */
import { BakeError } from "#core/bake/index";
import { composeMix, MixError } from "#core/compose/index";
import type { ComposedMix } from "#core/lora/types";
import { loadPeftAdapter } from "#core/peft/index";
import type { BakeRequest, BakeResponse } from "#core/wire/bake";
import { EngineError } from "../engine/errors.js";
import { checkCompatible, type AdapterProvider } from "../engine/mix-resolver.js";
import { loraFactorProblem } from "../model/lora-factors.js";
import type { BaseModel } from "../model/types.js";
import type { BakeJobRunner } from "./bake-job.js";
import { measureFidelity } from "./fidelity.js";
import { DEFAULT_PROBE_SET, type ProbeSetSpec } from "./probe-set.js";

export interface RunnerBakerOptions {
  /** Where the CPU-bound bake runs (bakeOnWorkerThread in the service, bakeInline in tests). */
  runJob: BakeJobRunner;
  /** Bakes at once (each holds its adapters' copies and dense intermediates on a thread); more → 429 overloaded. Default 1. */
  maxConcurrent?: number;
  probe?: ProbeSetSpec;
}

/** Error class names a bake may throw for a bad request (from core, possibly across the thread boundary). */
const REQUEST_ERRORS = new Set([BakeError.name, MixError.name, "BakeError", "MixError"]);

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

function checkServable(label: string, mix: ComposedMix): void {
  const problem = loraFactorProblem(mix);
  if (problem) throw new EngineError("unprocessable_entity_error", `the ${label} overflows float32 and cannot be measured: ${problem}`);
}

export class RunnerBaker {
  private readonly probe: ProbeSetSpec;
  /** Bakes in flight (their count bounds concurrency; `drain` awaits them). */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly adapters: AdapterProvider | null,
    private readonly options: RunnerBakerOptions,
  ) {
    this.probe = options.probe ?? DEFAULT_PROBE_SET;
  }

  async bake(model: BaseModel, request: BakeRequest): Promise<BakeResponse> {
    if (this.inFlight.size >= (this.options.maxConcurrent ?? 1)) {
      throw new EngineError("overloaded", "this runner is already baking; retry shortly", 5);
    }
    const job = this.bakeNow(model, request);
    this.inFlight.add(job);
    try {
      return await job;
    } finally {
      this.inFlight.delete(job);
    }
  }

  /** Bakes running now. */
  get running(): number {
    return this.inFlight.size;
  }

  /**
   * Shutdown (SIGTERM): waits for the bakes in flight to settle, for at most `timeoutMs`
   * (new bakes are refused by the HTTP layer once the runner drains). Resolves true when none is left.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.inFlight.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const settled = Promise.allSettled([...this.inFlight]).then(() => true);
    const result = await Promise.race([settled, expired]);
    clearTimeout(timer);
    return result;
  }

  private async bakeNow(model: BaseModel, request: BakeRequest): Promise<BakeResponse> {
    const active = request.adapters.filter((e) => e.weight !== 0);
    if (active.length === 0) throw new EngineError("invalid_request_error", "every weight of the mix is 0: there is nothing to bake");
    if (!this.adapters) throw new EngineError("service_unavailable_error", "this runner has no adapter source configured");
    const settled = await Promise.allSettled(active.map((e) => this.adapters!.acquire(e.id, e.sha256)));
    const leases = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    try {
      const failed = settled.find((s) => s.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const { manifest } = model;
      active.forEach((e, i) => checkCompatible(e.id, leases[i]!.adapter, manifest));
      const terms = active.map((e, i) => ({ adapter: leases[i]!.adapter, weight: e.weight }));
      let exact: ComposedMix;
      try {
        exact = composeMix(terms);
      } catch (e) {
        if (e instanceof MixError) throw new EngineError("unprocessable_entity_error", `the mix cannot be composed: ${e.message}`);
        throw e;
      }
      checkServable("mix", exact);

      const t0 = performance.now();
      const options = { strategy: request.strategy, density: request.density, rank: request.rank, seed: request.seed };
      for (const k of ["density", "rank", "seed"] as const) if (options[k] === undefined) delete options[k];
      let job;
      try {
        job = await this.options.runJob({ terms, options, baseModel: manifest.id });
      } catch (e) {
        if (REQUEST_ERRORS.has((e as Error).name)) throw new EngineError("invalid_request_error", `cannot bake: ${(e as Error).message}`);
        throw e;
      }
      const t1 = performance.now();
      // What will be stored is what is measured: parse the files back as the edge will.
      const baked = loadPeftAdapter(job.config, job.safetensors);
      checkCompatible("(baked)", baked, manifest);
      const bakedMix = composeMix([{ adapter: baked, weight: 1 }]);
      checkServable("baked adapter", bakedMix);
      const fidelity = await measureFidelity(model, exact, bakedMix, this.probe);
      const t2 = performance.now();
      const rank = Math.max(0, ...job.report.perModule.map((m) => m.rank));
      return {
        adapter_config: job.config,
        safetensors_base64: toBase64(job.safetensors),
        report: {
          strategy: request.strategy,
          density: request.density ?? null,
          rank,
          seed: request.seed ?? null,
          total_discarded_energy: job.report.totalDiscardedEnergy,
          per_module: job.report.perModule.map((m) => ({ module: m.module, rank: m.rank, discarded_energy: m.discardedEnergy })),
          fidelity,
        },
        timing_ms: { bake: t1 - t0, fidelity: t2 - t1 },
      };
    } finally {
      for (const lease of leases) lease.release();
    }
  }
}
