import type { BaseModel } from "../../gpu-runner/src/model/index.js";
import type { CaseResult } from "./report.js";
import { loadBenchModel } from "./workload.js";

export interface BenchContext {
  /** Sub-minute smoke run: the tiny model, few rounds, small sizes. Never read timings in CI. */
  quick: boolean;
  /** Model preset the runner-side cases use ("loraedge-small", or "loraedge-tiny" with --quick). */
  modelId: string;
  /** Measured rounds per comparison (≥ 5 in a full run). */
  rounds: number;
  warmup: number;
  /** Prints one progress line. */
  progress(message: string): void;
  /** Folder for plots and other files a case writes (bench/ in a full run). */
  outDir: string;
  /** `--streams 1,64`: case 9's stream counts instead of its own (iteration only; never recorded). */
  streams?: number[];
}

export interface BenchCase {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Omit<CaseResult, "id" | "title" | "seconds">>;
}

/**
 * A case that measures the bench model (`ctx.modelId` on the node backend): loaded before `run`,
 * disposed after it, also when it throws.
 */
export function modelCase(spec: { id: string; title: string; run(ctx: BenchContext, model: BaseModel): ReturnType<BenchCase["run"]> }): BenchCase {
  return {
    id: spec.id,
    title: spec.title,
    async run(ctx) {
      const model = await loadBenchModel(ctx.modelId);
      try {
        return await spec.run(ctx, model);
      } finally {
        await model.dispose();
      }
    },
  };
}
