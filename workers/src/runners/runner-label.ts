import { sha256Hex } from "../util/crypto.js";

/** Response header naming the runner that served a completion, opaquely. */
export const RUNNER_LABEL_HEADER = "x-loraedge-runner";

const labels = new Map<string, string>();

/**
 * An opaque, stable name of a runner for clients (the `x-loraedge-runner` header): "r-" + 12 hex
 * of sha256(secret, url). Clients can tell runners apart (and report which one served them)
 * without learning its host or port; the secret keeps the URL from being guessed back by
 * hashing candidates. Logs carry both, so an operator can map one to the other.
 */
export async function runnerLabel(secret: string, runnerUrl: string): Promise<string> {
  const key = `${secret}\n${runnerUrl}`;
  const known = labels.get(key);
  if (known) return known;
  const label = `r-${(await sha256Hex(key)).slice(0, 12)}`;
  if (labels.size < 1000) labels.set(key, label);
  return label;
}
