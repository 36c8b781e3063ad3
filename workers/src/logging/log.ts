/** Structured logs: one JSON object per line on console (Workers Logs / wrangler tail pick them up). */
export type LogLevel = "debug" | "info" | "warn" | "error";

const rank: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };
let minimum = 1;

/** Sets the lowest level written (from the LOG_LEVEL var); unknown values keep "info". */
export function setLogLevel(level: string | undefined): void {
  minimum = rank[level ?? "info"] ?? 1;
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (rank[level]! < minimum) return;
  const line = JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
