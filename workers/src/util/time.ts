/** UTC day of a unix-ms time, "YYYY-MM-DD". */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The minute of a unix-ms time (minutes since the epoch): the per-minute rate window it falls in. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / 60_000);
}

/** Seconds from `ms` to the next minute (the rate window's end), rounded up. */
export function secondsUntilNextMinute(ms: number): number {
  return Math.ceil(((minuteOf(ms) + 1) * 60_000 - ms) / 1000);
}

/** Seconds from `ms` to the next UTC midnight. */
export function secondsUntilUtcMidnight(ms: number): number {
  const d = new Date(ms);
  const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
  return Math.ceil((next - ms) / 1000);
}

export const isoTime = (ms: number) => new Date(ms).toISOString();
