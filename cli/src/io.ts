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

/**
 * The lines of `input` (LF or CR LF; a last line without a newline too). Breaking out of the
 * loop ends the iteration of `input`, which releases stdin (an open terminal or pipe would
 * otherwise keep the process alive).
 */
export async function* lines(input: AsyncIterable<string | Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of input) {
    buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline).replace(/\r$/, "");
      buffer = buffer.slice(newline + 1);
    }
  }
  buffer += decoder.decode();
  if (buffer !== "") yield buffer;
}
