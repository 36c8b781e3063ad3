/**
 * Per-isolate health of runners. A runner that failed (connection error or 5xx) is "down"
 * for a cool-down that doubles with consecutive failures (1 s, 2 s, … capped at 30 s); a
 * success clears it. Down runners are still tried, last, when every runner is down.
 */
export interface RunnerHealth {
  consecutiveFailures: number;
  downUntil: number;
  lastError: string | null;
  lastOkAt: number | null;
  lastFailureAt: number | null;
}

const BASE_COOLDOWN_MS = 1_000;
const MAX_COOLDOWN_MS = 30_000;

export class HealthTracker {
  private readonly state = new Map<string, RunnerHealth>();

  get(url: string): RunnerHealth {
    let s = this.state.get(url);
    if (!s) {
      s = { consecutiveFailures: 0, downUntil: 0, lastError: null, lastOkAt: null, lastFailureAt: null };
      this.state.set(url, s);
    }
    return s;
  }

  isHealthy(url: string, now = Date.now()): boolean {
    return this.get(url).downUntil <= now;
  }

  markFailure(url: string, error: string, now = Date.now()): void {
    const s = this.get(url);
    s.consecutiveFailures += 1;
    s.lastError = error;
    s.lastFailureAt = now;
    s.downUntil = now + Math.min(MAX_COOLDOWN_MS, BASE_COOLDOWN_MS * 2 ** (s.consecutiveFailures - 1));
  }

  /**
   * A success clears the back-off. `observedSince`: when the observation began (a probe's start);
   * a failure seen after that is newer news, and the success is ignored.
   */
  markSuccess(url: string, now = Date.now(), observedSince?: number): void {
    const s = this.get(url);
    if (observedSince !== undefined && s.lastFailureAt !== null && s.lastFailureAt > observedSince) return;
    s.consecutiveFailures = 0;
    s.downUntil = 0;
    s.lastError = null;
    s.lastOkAt = now;
  }

  /** Healthy runners in the given order, then down ones (also in order). */
  order(urls: readonly string[], now = Date.now()): string[] {
    const up = urls.filter((u) => this.isHealthy(u, now));
    const down = urls.filter((u) => !this.isHealthy(u, now));
    return [...up, ...down];
  }

  reset(): void {
    this.state.clear();
  }
}

/** The isolate's tracker (module state lives as long as the isolate). */
export const runnerHealth = new HealthTracker();
