/**
 * Where the CLI finds the edge and its key: flags, then LORAEDGE_URL / LORAEDGE_API_KEY, then
 * the config file written by `loraedge login` ($XDG_CONFIG_HOME/loraedge/config.json, default
 * ~/.config/loraedge/config.json; mode 0600 in a 0700 folder, as it holds a secret).
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import path from "node:path";
import { UsageError } from "./usage-error.js";

export interface StoredConfig {
  url: string;
  api_key: string;
}

export interface Connection {
  url: string;
  apiKey: string;
  /** Where each came from, for messages. */
  source: { url: string; apiKey: string };
}

export type Env = Record<string, string | undefined>;

export function configPath(env: Env): string {
  const base = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME || homedir(), ".config");
  return path.join(base, "loraedge", "config.json");
}

/** The stored config, or null when there is none; a file that is not ours is a usage error. */
export function readConfig(env: Env): StoredConfig | null {
  const file = configPath(env);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
  try {
    const c = JSON.parse(text) as Partial<StoredConfig>;
    if (typeof c.url === "string" && typeof c.api_key === "string") return { url: c.url, api_key: c.api_key };
  } catch {
    /* fall through */
  }
  throw new UsageError(`${file} is not a loraedge config (expected {"url", "api_key"}); run \`loraedge login\` again`);
}

/**
 * Writes the config atomically with mode 0600 (its folder 0700, tightened when it already
 * existed with a laxer mode: the folder is loraedge's own). Returns the path.
 */
export function writeConfig(env: Env, config: StoredConfig): string {
  const file = configPath(env);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  chmodSync(path.dirname(file), 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600); // in case the file existed with a laxer mode or a umask interfered
  renameSync(tmp, file);
  return file;
}

/** Checks and normalises an edge URL (http/https, no trailing slash). */
export function normaliseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`'${raw}' is not a URL (expected e.g. http://127.0.0.1:8787)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`'${raw}': only http and https URLs`);
  return url.toString().replace(/\/+$/, "");
}

/** Resolves the connection: flag > environment > config file. */
export function resolveConnection(env: Env, flags: { url?: string; key?: string }): Connection {
  const stored = readConfig(env);
  const pick = (flag: string | undefined, envName: string, fileValue: string | undefined) =>
    flag ? { value: flag, from: "--flag" } : env[envName] ? { value: env[envName]!, from: envName } : fileValue ? { value: fileValue, from: configPath(env) } : null;
  const url = pick(flags.url, "LORAEDGE_URL", stored?.url);
  const key = pick(flags.key, "LORAEDGE_API_KEY", stored?.api_key);
  if (!url || !key) {
    throw new UsageError(
      `not logged in: run \`loraedge login --url <edge> --key <api key>\` or set LORAEDGE_URL and LORAEDGE_API_KEY (missing: ${[!url && "edge URL", !key && "API key"].filter(Boolean).join(", ")})`,
    );
  }
  return { url: normaliseUrl(url.value), apiKey: key.value, source: { url: url.from, apiKey: key.from } };
}
