/** A command that cannot be sent as typed (bad flags, bad local files): exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, remote: 1, usage: 2 } as const;
