/** An in-memory Io for running commands in-process in tests. */
import type { Env } from "./config.js";
import type { Io } from "./io.js";

export interface CapturedIo extends Io {
  out: () => string;
  err: () => string;
}

export function captureIo(opts: { env?: Env; cwd?: string; stdin?: string; stderrIsTTY?: boolean } = {}): CapturedIo {
  let out = "";
  let err = "";
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    stdin: (async function* () {
      if (opts.stdin !== undefined) yield opts.stdin;
    })(),
    stderrIsTTY: opts.stderrIsTTY ?? false,
    stdinIsTTY: false,
    env: opts.env ?? {},
    cwd: opts.cwd ?? process.cwd(),
    out: () => out,
    err: () => err,
  };
}
