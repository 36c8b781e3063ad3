/** Account commands: login, models, keys, usage. */
import { LoraedgeClient } from "../../../client/src/index.js";
import { readConfig, normaliseUrl, writeConfig } from "../config.js";
import { positionals, runSubcommand, str, stringOptions, type Command } from "../command.js";
import { lines } from "../io.js";
import { printFields, printJson, printTable } from "../output.js";
import { UsageError } from "../usage-error.js";

const DEFAULT_URL = "http://127.0.0.1:8787";

export const login: Command = {
  name: "login",
  synopsis: "[--url URL] [--key KEY]",
  summary: "check an API key against the edge and store both in the config file (mode 0600)",
  details: [
    "Without --key the key is read from LORAEDGE_API_KEY, else from the first line of stdin (prompted on a terminal).",
    `--url defaults to LORAEDGE_URL, the stored URL, or ${DEFAULT_URL}.`,
  ],
  options: {},
  async run(ctx) {
    positionals(ctx, 0, 0, "");
    const env = ctx.io.env;
    const stored = readConfig(env);
    const url = normaliseUrl(str(ctx, "url") ?? env.LORAEDGE_URL ?? stored?.url ?? DEFAULT_URL);
    let key = str(ctx, "key") ?? env.LORAEDGE_API_KEY;
    if (!key) {
      if (ctx.io.stdinIsTTY) ctx.io.stderr(`API key for ${url}: `);
      for await (const line of lines(ctx.io.stdin)) {
        key = line.trim();
        break;
      }
    }
    if (!key) throw new UsageError("no API key given (--key, LORAEDGE_API_KEY or stdin)");
    // A tenant route: an admin token or a revoked key is refused here, not stored.
    const keys = await new LoraedgeClient({ baseUrl: url, apiKey: key }).keys.list();
    const file = writeConfig(env, { url, api_key: key });
    if (ctx.json) return printJson(ctx.io, { url, config: file, keys: keys.data.length });
    ctx.io.stdout(`logged in to ${url} (key ${key.slice(0, 10)}…); saved to ${file}\n`);
  },
};

export const models: Command = {
  name: "models",
  synopsis: "[model-id]",
  summary: "base models served now; with an id: its manifest (targetable modules, shapes, max rank)",
  options: {},
  async run(ctx) {
    const [id] = positionals(ctx, 0, 1, "");
    const client = ctx.client();
    if (!id) {
      const list = await client.models.list();
      if (ctx.json) return printJson(ctx.io, list);
      return printTable(ctx.io, ["ID", "OWNED BY"], list.data.map((m) => [m.id, m.owned_by]));
    }
    const model = await client.models.get(id);
    if (ctx.json) return printJson(ctx.io, model);
    const m = model.manifest;
    printFields(ctx.io, [
      ["id", m.id],
      ["architecture", m.architecture],
      ["dtype", m.dtype],
      ["parameters", m.parameters],
      ["layers", m.numLayers],
      ["hidden size", m.hiddenSize],
      ["context length", m.contextLength],
      ["max adapter rank", m.maxRank],
    ]);
    printTable(ctx.io, ["TARGET MODULE", "IN", "OUT", "MODE"], m.targets.map((t) => [t.module, String(t.in), String(t.out), t.mode]));
  },
};

export const keys: Command = {
  name: "keys",
  synopsis: "[create | revoke <key-id>]",
  summary: "list your API keys (prefixes), create one (shown once), or revoke one",
  options: {},
  async run(ctx) {
    const client = ctx.client();
    const create = async () => {
      const created = await client.keys.create();
      if (ctx.json) return printJson(ctx.io, created);
      ctx.io.stdout(`${created.key}\n(key ${created.id}; shown once, store it now)\n`);
    };
    const revoke = async (id: string | undefined) => {
      if (!id) throw new UsageError("missing <key-id> (see `loraedge keys`)");
      const revoked = await client.keys.revoke(id);
      if (ctx.json) return printJson(ctx.io, revoked);
      ctx.io.stdout(`revoked ${revoked.id} (${revoked.prefix}…)\n`);
    };
    await runSubcommand(ctx, { create, revoke }, async () => {
      const list = await client.keys.list();
      if (ctx.json) return printJson(ctx.io, list);
      printTable(ctx.io, ["ID", "PREFIX", "CREATED", "REVOKED"], list.data.map((k) => [k.id, k.prefix, k.created_at, k.revoked_at ?? ""]));
    });
  },
};

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export const usage: Command = {
  name: "usage",
  synopsis: "[--from YYYY-MM-DD] [--to YYYY-MM-DD]",
  summary: "requests and tokens per UTC day (default: the last 30 days) and your limits",
  options: stringOptions("from", "to"),
  async run(ctx) {
    positionals(ctx, 0, 0, "");
    const from = str(ctx, "from");
    const to = str(ctx, "to");
    for (const [n, v] of [["from", from], ["to", to]] as const) if (v !== undefined && !DAY.test(v)) throw new UsageError(`--${n}: expected YYYY-MM-DD, got '${v}'`);
    const report = await ctx.client().usage.get({ from, to });
    if (ctx.json) return printJson(ctx.io, report);
    const row = (date: string, d: (typeof report)["totals"]) => [date, String(d.requests), String(d.prompt_tokens), String(d.completion_tokens), String(d.total_tokens)];
    printTable(ctx.io, ["DATE", "REQUESTS", "PROMPT TOKENS", "COMPLETION TOKENS", "TOTAL TOKENS"], [
      ...report.data.map((d) => row(d.date, d)),
      row("total", report.totals),
    ]);
    ctx.io.stdout(`limits: ${report.limits.requests_per_minute} requests/minute, ${report.limits.tokens_per_day} tokens/day\n`);
  },
};
