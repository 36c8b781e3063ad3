/**
 * Per-isolate record of each runner's last reported load (requests queued + running: the
 * LOAD_HEADER of its answers and the `load` of its /healthz), for bounded-load routing
 * (bounded-load.ts). A report older than LOAD_TTL_MS is treated as unknown.
 */
export const LOAD_TTL_MS = 30_000;

export interface LoadReport {
  load: number;
  at: number;
}

export class LoadTracker {
  private readonly reports = new Map<string, LoadReport>();

  /** Records a report; ignores anything that is not a non-negative integer (a header from an older runner). */
  record(url: string, load: unknown, now = Date.now()): void {
    const n = typeof load === "string" ? (load.trim() === "" ? NaN : Number(load)) : typeof load === "number" ? load : NaN;
    if (!Number.isSafeInteger(n) || n < 0) return;
    this.reports.set(url, { load: n, at: now });
  }

  /** The last report, or null when none is fresh. */
  get(url: string, now = Date.now()): LoadReport | null {
    const r = this.reports.get(url);
    return r && now - r.at <= LOAD_TTL_MS ? r : null;
  }

  loadOf(url: string, now = Date.now()): number | null {
    return this.get(url, now)?.load ?? null;
  }

  reset(): void {
    this.reports.clear();
  }
}

/** The isolate's tracker. */
export const runnerLoads = new LoadTracker();
