/**
 * `loraedge`: the command line for adapter authors and scripts, over the public API
 * (client/). Arguments are parsed with node:util parseArgs (strict; no CLI framework).
 * Exit codes: 0 ok, 1 the API (or the network) refused, 2 usage error or a local file that
 * cannot be sent.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { LoraedgeClient, LoraedgeError } from "../../client/src/index.js";
import type { Command, CommandContext, OptionSpecs } from "./command.js";
import { login, keys, models, usage } from "./commands/account.js";
import { ls, pull, push, rm, show } from "./commands/adapters.js";
import { bake, compose, compositions } from "./commands/compositions.js";
import { dev } from "./commands/dev.js";
import { chat, complete } from "./commands/inference.js";
import { configPath, resolveConnection } from "./config.js";
import { processIo, type Io } from "./io.js";
import { EXIT, UsageError } from "./usage-error.js";

export const COMMANDS: Command[] = [login, push, ls, show, pull, rm, compose, compositions, bake, complete, chat, models, keys, usage, dev];

const GLOBAL_OPTIONS: OptionSpecs = {
  url: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

function overview(io: Io): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: loraedge <command> [arguments] [--json] [--url URL] [--key KEY]   (loraedge --version)",
    "",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Global: --json (the API's JSON on stdout), --url / --key (else LORAEDGE_URL / LORAEDGE_API_KEY, else the",
    `config file ${configPath(io.env)} written by \`loraedge login\`), --help (per command too).`,
    "Exit codes: 0 ok, 1 the API refused (its message is printed), 2 usage error or a local file that cannot be sent.",
    "",
  ].join("\n");
}

function commandHelp(c: Command): string {
  return [`usage: loraedge ${c.name} ${c.synopsis}`, "", c.summary, ...(c.details ?? []).map((d) => `  ${d}`), ""].join("\n");
}

/** Runs one command line; resolves with the exit code (never calls process.exit). */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout)(overview(io));
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version" || name === "-v") {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    io.stdout(`loraedge ${pkg.version}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command '${name}' (see loraedge --help)`);
    let parsed: { values: CommandContext["values"]; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (parsed.values.help) {
      io.stdout(commandHelp(command));
      return EXIT.ok;
    }
    let client: LoraedgeClient | null = null;
    const ctx: CommandContext = {
      io,
      json: parsed.values.json === true,
      values: parsed.values,
      positionals: parsed.positionals,
      client() {
        if (!client) {
          const conn = resolveConnection(io.env, { url: parsed.values.url as string | undefined, key: parsed.values.key as string | undefined });
          client = new LoraedgeClient({ baseUrl: conn.url, apiKey: conn.apiKey });
        }
        return client;
      },
    };
    await command.run(ctx);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`loraedge: ${e.message}\n${command ? `usage: loraedge ${command.name} ${command.synopsis}\n` : ""}`);
      return EXIT.usage;
    }
    if (e instanceof LoraedgeError) {
      const where = e.status === 0 ? "" : ` (${e.status} ${e.type}${e.requestId ? `, request ${e.requestId}` : ""})`;
      const retry = e.retryAfter !== null ? `; retry after ${e.retryAfter} s` : "";
      io.stderr(`loraedge: ${e.message}${where}${retry}\n`);
      return EXIT.remote;
    }
    io.stderr(`loraedge: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.remote;
  }
}
