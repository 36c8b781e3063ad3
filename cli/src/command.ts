import type { ParseArgsConfig } from "node:util";
import type { LoraedgeClient } from "../../client/src/index.js";
import type { Io } from "./io.js";
import { UsageError } from "./usage-error.js";

export type OptionSpecs = NonNullable<ParseArgsConfig["options"]>;
export type OptionValues = Record<string, string | boolean | Array<string | boolean> | undefined>;

export interface CommandContext {
  io: Io;
  /** `--json`: print the API's JSON instead of text. */
  json: boolean;
  /** The API client for the resolved connection (UsageError when not logged in). */
  client(): LoraedgeClient;
  values: OptionValues;
  positionals: string[];
}

export interface Command {
  name: string;
  /** Synopsis after the command name, e.g. `<peft-dir> [--name N]`. */
  synopsis: string;
  summary: string;
  /** Extra help lines (options, examples). */
  details?: string[];
  options: OptionSpecs;
  run(ctx: CommandContext): Promise<void>;
}

/** Specs of string options (`--name value`, read with `str` or `num`), one per name. */
export function stringOptions(...names: string[]): OptionSpecs {
  return Object.fromEntries(names.map((n) => [n, { type: "string" as const }]));
}

/** Specs of boolean options (`--name`, read with `flag`), one per name. */
export function booleanOptions(...names: string[]): OptionSpecs {
  return Object.fromEntries(names.map((n) => [n, { type: "boolean" as const }]));
}

/** A string option's value (undefined when absent). */
export const str = (ctx: CommandContext, name: string) => ctx.values[name] as string | undefined;
export const flag = (ctx: CommandContext, name: string) => ctx.values[name] === true;

/** A numeric option: undefined when absent, UsageError when not a number (or not an integer when `integer`). */
export function num(ctx: CommandContext, name: string, opts: { integer?: boolean; min?: number } = {}): number | undefined {
  const raw = str(ctx, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || (opts.min !== undefined && n < opts.min)) {
    const what = opts.integer ? "an integer" : "a number";
    throw new UsageError(`--${name} expects ${what}${opts.min !== undefined ? ` ≥ ${opts.min}` : ""}, got '${raw}'`);
  }
  return n;
}

/** Exactly `count` positionals (or between min and max), else a UsageError naming what is expected. */
export function positionals(ctx: CommandContext, min: number, max: number, what: string): string[] {
  const p = ctx.positionals;
  if (p.length < min) throw new UsageError(`missing ${what}`);
  if (p.length > max) throw new UsageError(`unexpected argument '${p[max]}'`);
  return p;
}

/**
 * `<command> [<sub> [<arg>]]`: without a subcommand runs `none()`, else `subs[sub](arg)`; an
 * unknown subcommand is a UsageError naming the known ones.
 */
export async function runSubcommand(
  ctx: CommandContext,
  subs: Record<string, (arg: string | undefined) => Promise<void>>,
  none: () => Promise<void>,
): Promise<void> {
  const [sub, arg] = positionals(ctx, 0, 2, "");
  if (sub === undefined) return none();
  const run = Object.hasOwn(subs, sub) ? subs[sub] : undefined;
  if (!run) throw new UsageError(`unknown subcommand '${sub}' (expected: ${Object.keys(subs).join(", ")})`);
  return run(arg);
}
