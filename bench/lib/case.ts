import type { CaseResult } from "./report.js";

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
}

export interface BenchCase {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<Omit<CaseResult, "id" | "title" | "seconds">>;
}
