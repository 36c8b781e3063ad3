/** Composition commands: compose, compositions, bake. */
import type { BakeStrategy } from "../../../client/src/index.js";
import { booleanOptions, flag, num, positionals, runSubcommand, str, stringOptions, type Command } from "../command.js";
import { parseMix } from "../mix.js";
import { printJson, printTable } from "../output.js";
import { resolveAdapterRef } from "../refs.js";
import { UsageError } from "../usage-error.js";

export const compose: Command = {
  name: "compose",
  synopsis: "<name> <adapter=weight>... (e.g. pirate=0.7 acme/poet@1.0.0=-0.2)",
  summary: "save a weighted mix of adapters as a composition",
  options: {},
  async run(ctx) {
    const [name, ...terms] = positionals(ctx, 2, Infinity, "<name> and at least one adapter=weight");
    const client = ctx.client();
    const mix = parseMix(terms);
    const adapters = await Promise.all(mix.map(async (t) => ({ id: await resolveAdapterRef(client, t.ref), weight: t.weight })));
    const comp = await client.compositions.create({ name: name!, adapters });
    if (ctx.json) return printJson(ctx.io, comp);
    ctx.io.stdout(`composed ${comp.name} (${comp.id}) on ${comp.base_model}: ${comp.adapters.map((a) => `${a.weight}×${a.ref}`).join(" + ")}\n`);
  },
};

export const compositions: Command = {
  name: "compositions",
  synopsis: "[rm <name>]",
  summary: "list your compositions, or delete one",
  options: {},
  async run(ctx) {
    const client = ctx.client();
    const rm = async (target: string | undefined) => {
      if (!target) throw new UsageError("missing <name> of the composition to delete");
      const deleted = await client.compositions.delete(target);
      if (ctx.json) return printJson(ctx.io, deleted);
      ctx.io.stdout(`deleted composition ${target} (${deleted.id})\n`);
    };
    await runSubcommand(ctx, { rm }, async () => {
      const list = await client.compositions.list();
      if (ctx.json) return printJson(ctx.io, list);
      const mixText = (c: (typeof list.data)[number]) => c.adapters.map((a) => `${a.weight}×${a.ref}`).join(" + ");
      printTable(ctx.io, ["NAME", "BASE MODEL", "MIX", "CREATED"], list.data.map((c) => [c.name, c.base_model, mixText(c), c.created_at]));
    });
  },
};

const STRATEGIES: BakeStrategy[] = ["linear", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune"];

export const bake: Command = {
  name: "bake",
  synopsis: "<composition> --strategy S [--rank R] [--density D] [--seed N] [--name N] [--version V] [--public] [--tags a,b]",
  summary: "bake a composition into a new adapter (strategies: " + STRATEGIES.join(", ") + ")",
  details: ["--density is required by ties, dare_* and magnitude_prune (default 0.5 here); --name defaults to <composition>-<strategy>."],
  options: { ...stringOptions("strategy", "rank", "density", "seed", "name", "version", "tags", "description"), ...booleanOptions("public") },
  async run(ctx) {
    const [composition] = positionals(ctx, 1, 1, "<composition>");
    const strategy = str(ctx, "strategy") as BakeStrategy | undefined;
    if (!strategy || !STRATEGIES.includes(strategy)) throw new UsageError(`--strategy: one of ${STRATEGIES.join(", ")}`);
    const needsDensity = strategy === "ties" || strategy.startsWith("dare_") || strategy === "magnitude_prune";
    const baked = await ctx.client().compositions.bake(composition!, {
      strategy,
      rank: num(ctx, "rank", { integer: true, min: 1 }),
      density: num(ctx, "density") ?? (needsDensity ? 0.5 : undefined),
      seed: num(ctx, "seed", { integer: true, min: 0 }),
      name: str(ctx, "name") ?? `${composition}-${strategy.replace(/_/g, "-")}`,
      version: str(ctx, "version"),
      visibility: flag(ctx, "public") ? "public" : undefined,
      tags: str(ctx, "tags"),
      description: str(ctx, "description"),
    });
    if (ctx.json) return printJson(ctx.io, baked);
    ctx.io.stdout(
      `baked ${composition} → ${baked.ref} (${baked.id}) with ${baked.bake.strategy}: rank ${baked.rank}, discarded energy ${(baked.bake.total_discarded_energy * 100).toFixed(2)} %, fidelity to the mix: KL ${baked.bake.fidelity.kl_mean.toExponential(2)} nats/token, top-1 agreement ${(baked.bake.fidelity.top1_agreement * 100).toFixed(1)} %\n`,
    );
  },
};
