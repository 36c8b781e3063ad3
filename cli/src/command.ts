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
