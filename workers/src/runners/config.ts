import type { Env } from "../env.js";
import { serviceUnavailable } from "../errors/api-error.js";

/** RUNNER_URLS as a list of base URLs without trailing slashes. */
export function runnerUrls(env: Pick<Env, "RUNNER_URLS">): string[] {
  return (env.RUNNER_URLS ?? "")
    .split(",")
    .map((u) => u.trim().replace(/\/+$/, ""))
    .filter((u) => u !== "");
}

export function runnerSecret(env: Pick<Env, "RUNNER_SECRET">): string {
  if (!env.RUNNER_SECRET) throw serviceUnavailable("RUNNER_SECRET is not configured");
  return env.RUNNER_SECRET;
}
