/**
 * One bake as plain data (what crosses to the bake thread and back) and the plain in-thread
 * implementation: core's `bake` on the terms, then the PEFT files of the result.
 */
import { bake, type BakeOptions, type BakeReport } from "#core/bake/index";
import { adapterAsFloat32, type LoraFactor } from "#core/lora/factor";
import type { LoraAdapter } from "#core/lora/types";
import { writePeftAdapter } from "#core/peft/index";

/** `F`: the factors' type (the cache's adapters may hold 16-bit ones; what crosses to the thread is F32). */
export interface BakeJob<F extends LoraFactor = LoraFactor> {
  /** The adapters as the cache holds them (16-bit factors widened here: core's bake works in F32). */
  terms: { adapter: LoraAdapter<F>; weight: number }[];
  options: BakeOptions;
  /** `base_model_name_or_path` of the baked adapter. */
  baseModel: string;
}

export interface BakeJobResult {
  config: Record<string, unknown>;
  safetensors: Uint8Array;
  report: BakeReport;
}

/** The bake itself, on the calling thread (CPU-bound: seconds per large module for dense strategies). */
export function runBakeJob(job: BakeJob): BakeJobResult {
  const { adapter, report } = bake(job.terms.map((t) => ({ adapter: adapterAsFloat32(t.adapter), weight: t.weight })), job.options);
  const files = writePeftAdapter(adapter, { baseModel: job.baseModel });
  return { config: files.config, safetensors: files.safetensors, report };
}

/** How a bake job is run: inline (tests, tiny models) or on a worker thread (the service). */
export type BakeJobRunner = (job: BakeJob) => Promise<BakeJobResult>;

export const bakeInline: BakeJobRunner = async (job) => runBakeJob(job);
