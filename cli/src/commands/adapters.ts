/** Adapter commands: push, ls, show, pull, rm. */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { LoraedgeError, CONFIG_PART, type Adapter, type AdapterQuery, type AdapterSort } from "../../../client/src/index.js";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { booleanOptions, flag, num, positionals, str, stringOptions, type Command, type CommandContext } from "../command.js";
import { formatBytes, printFields, printJson, printTable, progressBar } from "../output.js";
import { chatTemplateOfFolder, checkFolderAgainstModel, parsePeftFolder, readPeftFolder, writePeftFolder } from "../peft-folder.js";
import { resolveAdapterRef } from "../refs.js";
import { UsageError } from "../usage-error.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The base model's manifest; a model the edge does not serve is reported with what to do. */
async function manifestOf(ctx: CommandContext, model: string): Promise<ModelManifest> {
  try {
    return (await ctx.client().models.get(model)).manifest;
  } catch (e) {
    if (e instanceof LoraedgeError && e.status === 404) {
      throw new LoraedgeError(404, e.type, `${e.message}; pass --model <id> with one of \`loraedge models\``, e.requestId);
    }
    throw e;
  }
}

export const push: Command = {
  name: "push",
  synopsis: "<peft-dir> [--name N] [--version V] [--model M] [--public] [--tags a,b] [--description D]",
  summary: "validate a PEFT folder locally with core, then upload it (progress bar)",
  details: [
    "--model defaults to base_model_name_or_path of adapter_config.json; --name to the folder's name.",
    "A folder core refuses (or that does not fit the model) exits 2 with the parser's message; nothing is sent.",
    "A tokenizer_config.json (its chat_template) or chat_template.jinja in the folder is the adapter's own chat template: checked the same way, then uploaded with it.",
  ],
  options: { ...stringOptions("name", "version", "model", "tags", "description"), ...booleanOptions("public") },
  async run(ctx) {
    const [dir] = positionals(ctx, 1, 1, "<peft-dir>");
    const folder = readPeftFolder(path.resolve(ctx.io.cwd, dir!));
    const configModel = folder.config.base_model_name_or_path;
    const model = str(ctx, "model") ?? (typeof configModel === "string" && configModel !== "" ? configModel : undefined);
    if (!model) throw new UsageError(`${CONFIG_PART} names no base_model_name_or_path: pass --model <id>`);
    const name = str(ctx, "name") ?? path.basename(folder.dir);
    if (!NAME_RE.test(name)) throw new UsageError(`'${name}' is not a valid adapter name (letters, digits, '.', '_', '-'; 1-64 chars): pass --name`);
    // Parse before anything goes over the network, then check against the served model.
    const load = parsePeftFolder(folder);
    const template = chatTemplateOfFolder(folder);
    checkFolderAgainstModel(folder, load, await manifestOf(ctx, model));
    const bar = progressBar(ctx.io, `push ${name}`);
    let total = 0;
    const adapter = await ctx.client().adapters.upload(
      {
        config: folder.configText,
        weights: folder.weights,
        ...(folder.tokenizerConfigText !== undefined ? { tokenizerConfig: folder.tokenizerConfigText } : {}),
        ...(folder.chatTemplateText !== undefined ? { chatTemplate: folder.chatTemplateText } : {}),
      },
      {
        name,
        base_model: model,
        version: str(ctx, "version"),
        visibility: flag(ctx, "public") ? "public" : undefined,
        tags: str(ctx, "tags"),
        description: str(ctx, "description"),
      },
      {
        onProgress: (p) => {
          total = p.total;
          bar.update(p);
        },
      },
    );
    if (!ctx.json) bar.done(total);
    if (ctx.json) printJson(ctx.io, adapter);
    else ctx.io.stdout(`pushed ${adapter.ref} (${adapter.id}): rank ${load.summary.rank}, ${adapter.targets.length} modules, ${formatBytes(adapter.size_bytes)}, ${adapter.visibility}${template ? ", own chat template" : ""}\n`);
  },
};

const SORTS: AdapterSort[] = ["recent", "name", "downloads"];

export const ls: Command = {
  name: "ls",
  synopsis: "[text] [--model M] [--tag T] [--mine] [--sort recent|name|downloads] [--limit N] [--cursor C] [--all]",
  summary: "list adapters: public ones and your own (one page, or --all pages)",
  options: { ...stringOptions("model", "tag", "sort", "limit", "cursor"), ...booleanOptions("mine", "all") },
  async run(ctx) {
    const [q] = positionals(ctx, 0, 1, "");
    const sort = str(ctx, "sort");
    if (sort !== undefined && !SORTS.includes(sort as AdapterSort)) throw new UsageError(`--sort: one of ${SORTS.join(", ")}`);
    const query: AdapterQuery = {
      q,
      base_model: str(ctx, "model"),
      tag: str(ctx, "tag"),
      owner: flag(ctx, "mine") ? "me" : undefined,
      sort: sort as AdapterSort | undefined,
      limit: num(ctx, "limit", { integer: true, min: 1 }),
      cursor: str(ctx, "cursor"),
    };
    let data: Adapter[];
    let next: string | null = null;
    if (flag(ctx, "all")) {
      data = [];
      for await (const a of ctx.client().adapters.iterate(query)) data.push(a);
    } else {
      const page = await ctx.client().adapters.list(query);
      data = page.data;
      next = page.next_cursor;
    }
    if (ctx.json) return printJson(ctx.io, { object: "list", data, next_cursor: next });
    printTable(
      ctx.io,
      ["REF", "BASE MODEL", "RANK", "SIZE", "VISIBILITY", "DOWNLOADS", "TAGS"],
      data.map((a) => [a.ref, a.base_model, String(a.rank), formatBytes(a.size_bytes), a.visibility, String(a.downloads), a.tags.join(",")]),
    );
    if (next) ctx.io.stderr(`more: --cursor ${next} (or --all)\n`);
  },
};

export const show: Command = {
  name: "show",
  synopsis: "<ref>",
  summary: "one adapter: registry record and its adapter_config.json (ref: owner/name@version, id, or your own name[@version])",
  options: {},
  async run(ctx) {
    const [ref] = positionals(ctx, 1, 1, "<ref>");
    const client = ctx.client();
    const id = await resolveAdapterRef(client, ref!);
    const [adapter, configText] = await Promise.all([client.adapters.get(id), client.adapters.config(id)]);
    const config = JSON.parse(configText) as Record<string, unknown>;
    if (ctx.json) return printJson(ctx.io, { ...adapter, config });
    printFields(ctx.io, [
      ["ref", adapter.ref],
      ["id", adapter.id],
      ["base model", adapter.base_model],
      ["rank", adapter.rank],
      ["alpha", adapter.alpha],
      ["scale", adapter.scale],
      ["rslora", String(config.use_rslora === true)],
      ["dtype", adapter.dtype],
      ["size", formatBytes(adapter.size_bytes)],
      ["sha256", adapter.sha256],
      ["visibility", adapter.visibility],
      ["tags", adapter.tags.join(", ")],
      ["downloads", adapter.downloads],
      ["created", adapter.created_at],
      ["description", adapter.description],
    ]);
    const bake = adapter.bake;
    if (bake) {
      ctx.io.stdout(
        `baked with ${bake.strategy} (rank ${bake.rank}): discarded energy ${(bake.total_discarded_energy * 100).toFixed(2)} %, fidelity to the mix: KL ${bake.fidelity.kl_mean.toExponential(2)} nats/token, top-1 agreement ${(bake.fidelity.top1_agreement * 100).toFixed(1)} %\n`,
      );
    }
    ctx.io.stdout(`targets (${adapter.targets.length}):\n${adapter.targets.map((t) => `  ${t}`).join("\n")}\n`);
  },
};

export const pull: Command = {
  name: "pull",
  synopsis: "<ref> [dir] [--force]",
  summary: "download an adapter as a PEFT folder (default ./<name>); checks its sha256 and loads it with core",
  options: booleanOptions("force"),
  async run(ctx) {
    const [ref, dirArg] = positionals(ctx, 1, 2, "<ref>");
    const client = ctx.client();
    const id = await resolveAdapterRef(client, ref!);
    const adapter = await client.adapters.get(id);
    const dir = path.resolve(ctx.io.cwd, dirArg ?? adapter.name);
    if (!flag(ctx, "force") && existsSync(path.join(dir, CONFIG_PART))) {
      throw new UsageError(`${dir} already holds a ${CONFIG_PART}; pass --force to overwrite`);
    }
    const [configText, blob] = await Promise.all([client.adapters.config(adapter.id), client.adapters.download(adapter.id)]);
    const sha256 = createHash("sha256").update(blob.bytes).digest("hex");
    if (sha256 !== adapter.sha256 || (blob.sha256 !== null && blob.sha256 !== sha256)) {
      throw new LoraedgeError(502, "invalid_response", `downloaded weights have sha256 ${sha256}, the registry says ${adapter.sha256}`);
    }
    // What is written must load: the same parser an upload goes through.
    parsePeftFolder({ dir, configText, config: JSON.parse(configText), weights: blob.bytes });
    writePeftFolder(dir, configText, blob.bytes);
    if (ctx.json) printJson(ctx.io, { ...adapter, dir });
    else ctx.io.stdout(`pulled ${adapter.ref} → ${dir} (${formatBytes(blob.bytes.length)})\n`);
  },
};

export const rm: Command = {
  name: "rm",
  synopsis: "<ref> [--force]",
  summary: "delete one of your adapters (--force also deletes your compositions that use it)",
  options: booleanOptions("force"),
  async run(ctx) {
    const [ref] = positionals(ctx, 1, 1, "<ref>");
    const client = ctx.client();
    const id = await resolveAdapterRef(client, ref!);
    const deleted = await client.adapters.delete(id, { force: flag(ctx, "force") });
    if (ctx.json) return printJson(ctx.io, deleted);
    ctx.io.stdout(`deleted ${ref} (${deleted.id})${deleted.deleted_compositions.length ? `; and compositions ${deleted.deleted_compositions.join(", ")}` : ""}\n`);
  },
};
