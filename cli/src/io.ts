/** What a command may touch of the outside world (injected, so tests run commands in-process). */
import type { Env } from "./config.js";

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Lines typed or piped in (`login` without --key, `chat`). */
  stdin: AsyncIterable<string | Buffer>;
  /** True when stderr is a terminal (progress bars are drawn only then). */
  stderrIsTTY: boolean;
  stdinIsTTY: boolean;
  env: Env;
  cwd: string;
}

export function processIo(): Io {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    stdin: process.stdin,
    stderrIsTTY: Boolean(process.stderr.isTTY),
    stdinIsTTY: Boolean(process.stdin.isTTY),
    env: process.env,
    cwd: process.cwd(),
  };
}
