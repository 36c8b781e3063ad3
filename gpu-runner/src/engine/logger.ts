/** Structured logging seam: the engine logs facts; main.ts writes them as JSON lines. */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export const silentLogger: Logger = () => {};

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** JSON lines on `write` (stderr by default) at or above `minLevel`. */
export function jsonLogger(minLevel: LogLevel, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return function log(level, msg, fields) {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
  };
}
