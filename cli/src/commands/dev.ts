/** `dev random-adapter`: a random PEFT adapter for a served model, generated with core (for trying things). */
import { readFileSync } from "node:fs";
import path from "node:path";
import { modelManifestSchema, type ModelManifest } from "#core/manifest/model-manifest";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { num, positionals, str, stringOptions, type Command, type CommandContext } from "../command.js";
import { formatBytes, printJson } from "../output.js";
import { writePeftFolder } from "../peft-folder.js";
import { UsageError } from "../usage-error.js";

async function manifestFor(ctx: CommandContext, model: string | undefined): Promise<ModelManifest> {
  const file = str(ctx, "manifest");
  if (file) {
    let parsed;
    try {
      parsed = modelManifestSchema.safeParse(JSON.parse(readFileSync(path.resolve(ctx.io.cwd, file), "utf8")));
    } catch (e) {
      throw new UsageError(`--manifest ${file}: ${(e as Error).message}`);
    }
    if (!parsed.success) throw new UsageError(`--manifest ${file}: not a model manifest (${parsed.error.issues[0]?.message})`);
    if (model && parsed.data.id !== model) throw new UsageError(`--manifest ${file} is for '${parsed.data.id}', not '${model}'`);
    return parsed.data;
  }
  if (!model) throw new UsageError("--model <id> is required (see `loraedge models`), or --manifest <manifest.json>");
  return (await ctx.client().models.get(model)).manifest;
}

export const dev: Command = {
  name: "dev",
  synopsis: "random-adapter --model <id> [--rank 8] [--seed 1] [--modules 4] [--scale 0.25] [--manifest file] <dir>",
  summary: "helpers for trying things: random-adapter writes a random PEFT adapter for a model (core's generator)",
  details: [
    "The targets are the model's first --modules unmerged target modules (its manifest comes from the edge, or --manifest).",
    "Same --seed, same bytes.",
  ],
  options: stringOptions("model", "rank", "seed", "modules", "scale", "manifest"),
  async run(ctx) {
    const [sub, dir] = positionals(ctx, 2, 2, "subcommand and <dir> (loraedge dev random-adapter --model <id> <dir>)");
    if (sub !== "random-adapter") throw new UsageError(`unknown dev helper '${sub}' (expected: random-adapter)`);
    const manifest = await manifestFor(ctx, str(ctx, "model"));
    const rank = num(ctx, "rank", { integer: true, min: 1 }) ?? 8;
    if (rank > manifest.maxRank) throw new UsageError(`--rank ${rank} exceeds ${manifest.id}'s max rank ${manifest.maxRank}`);
    const seed = num(ctx, "seed", { integer: true, min: 0 }) ?? 1;
    const count = num(ctx, "modules", { integer: true, min: 1 }) ?? 4;
    const scale = num(ctx, "scale") ?? 0.25;
    const targets = manifest.targets.filter((t) => t.mode === "unmerged").slice(0, count);
    if (!targets.length) throw new UsageError(`${manifest.id} has no unmerged target modules`);
    const adapter = randomLoraAdapter(
      createRng(seed),
      targets.map((t) => ({ module: t.module, rank, inFeatures: t.in, outFeatures: t.out, scale })),
      { baseModel: manifest.id, fanInFanOut: targets[0]!.fanInFanOut },
    );
    const files = writePeftAdapter(adapter, { baseModel: manifest.id });
    const out = path.resolve(ctx.io.cwd, dir!);
    writePeftFolder(out, JSON.stringify(files.config, null, 2), files.safetensors);
    if (ctx.json) return printJson(ctx.io, { dir: out, model: manifest.id, rank, seed, modules: targets.map((t) => t.module), size_bytes: files.safetensors.length });
    ctx.io.stdout(`wrote ${out}: rank ${rank}, ${targets.length} modules of ${manifest.id}, ${formatBytes(files.safetensors.length)} (seed ${seed})\n`);
  },
};
