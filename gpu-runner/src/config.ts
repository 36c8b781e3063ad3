/**
 * Runner configuration: environment variables, overridden by command-line flags
 * (`--port 9000`, `--models loraedge-tiny,./my-model`, …), validated with zod.
 * Every option is documented in gpu-runner/README.md (keep the two in sync).
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { DEFAULT_STALL_LIMIT_MS } from "./engine/liveness.js";

const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max);
const mbFrom = () => z.coerce.number().finite().min(0);

export const runnerConfigSchema = z.object({
  /** TCP port; 0 picks a free one (the "listening" line reports it). */
  port: intFrom(0, 65535).default(8788),
  host: z.string().min(1).default("127.0.0.1"),
  /** HMAC shared secret with the edge (every /internal call is signed). */
  secret: z.string().min(8, "RUNNER_SECRET must be at least 8 characters"),
  /** Base URL of the edge worker that serves adapter blobs; absent → requests with adapters fail with 503. */
  edgeUrl: z.url().optional(),
  /** Preset ids (built on first use) or model directories. */
  models: z
    .string()
    .default("loraedge-tiny")
    .transform((s) => s.split(",").map((m) => m.trim()).filter(Boolean))
    .pipe(z.array(z.string()).min(1, "RUNNER_MODELS lists no model")),
  backend: z.enum(["node", "web"]).default("node"),
  /** onnxruntime-node execution provider: cpu | cuda | webgpu. */
  executionProvider: z.string().min(1).optional(),
  threads: intFrom(1, 1024).optional(),
  /** fp16 models: keep the fp16 graph, upcast to fp32 at load, or auto (keep on GPU EPs, upcast on the CPU EP and web). */
  float16: z.enum(["auto", "keep", "upcast"]).default("auto"),
  /** Pruned LoRA graph variants (model/lora-variants.ts): lazy (opened on first use), eager (at load), off. Each opened costs one more copy of the base weights. */
  loraVariants: z.enum(["lazy", "eager", "off"]).default("lazy"),
  /** Byte budget of parsed adapters (Float32 A and B). */
  adapterCacheMb: mbFrom().default(512),
  /** Largest adapter blob fetched from the edge. */
  adapterMaxMb: mbFrom().default(1024),
  /** Byte budget of merged sessions' weights. */
  mergedMb: mbFrom().default(1024),
  /** Merge policy: auto (cost-based), never, always (merge every non-empty mix before serving it). */
  mergePolicy: z.enum(["auto", "never", "always"]).default("auto"),
  /** auto policy: seconds of future demand a merged session is expected to serve (payback horizon). */
  mergeHorizonS: intFrom(1, 31_536_000).default(30),
  /** Rows in one forward step. */
  maxBatch: intFrom(1, 4096).default(32),
  /** Sum over running rows of (prompt + max_tokens): bounds KV-cache memory. */
  maxTokens: intFrom(1).default(65536),
  /** Requests waiting for a batch row; beyond it → 429 with Retry-After. */
  maxQueue: intFrom(0).default(256),
  /** Prompt tokens one row prefills per step (long prompts are chunked so decodes keep moving). */
  prefillChunk: intFrom(1).default(128),
  /** Prompt tokens one prefill step takes over all rows (bounds how long a prefill step delays decodes). */
  prefillTokens: intFrom(1).default(512),
  /** Model cache folder for presets (default: the model layer's default). */
  modelCache: z.string().min(1).optional(),
  /** On SIGTERM: how long running streams may take to finish before they are ended. */
  drainMs: intFrom(0).default(15_000),
  /** A streamed completion that has nothing to send for this long (queued, long prefill) writes an SSE comment `: keep-alive`, so the edge's idle timeout tells a slow runner from a hung one. 0: never. */
  sseKeepAliveMs: intFrom(0).default(5_000),
  /**
   * An engine with work and no model step returned for this long is stalled (a hung step): its
   * waiting streams get no keep-alives, /healthz answers 503 "stalled", new completions 503. 0: never.
   */
  stallLimitMs: intFrom(0, 86_400_000).default(DEFAULT_STALL_LIMIT_MS),
  /** Replay window for signed requests, seconds. */
  replayWindowS: intFrom(1).default(300),
  /** Log level for JSON log lines on stderr. */
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
});
export type RunnerConfig = z.infer<typeof runnerConfigSchema>;
type ConfigKey = keyof RunnerConfig;

/** Environment variable and flag per option. */
export const CONFIG_SOURCES: Record<ConfigKey, { env: string; flag: string }> = {
  port: { env: "RUNNER_PORT", flag: "port" },
  host: { env: "RUNNER_HOST", flag: "host" },
  secret: { env: "RUNNER_SECRET", flag: "secret" },
  edgeUrl: { env: "RUNNER_EDGE_URL", flag: "edge-url" },
  models: { env: "RUNNER_MODELS", flag: "models" },
  backend: { env: "RUNNER_BACKEND", flag: "backend" },
  executionProvider: { env: "RUNNER_EP", flag: "ep" },
  threads: { env: "RUNNER_THREADS", flag: "threads" },
  float16: { env: "RUNNER_FP16", flag: "fp16" },
  loraVariants: { env: "RUNNER_LORA_VARIANTS", flag: "lora-variants" },
  adapterCacheMb: { env: "RUNNER_ADAPTER_CACHE_MB", flag: "adapter-cache-mb" },
  adapterMaxMb: { env: "RUNNER_ADAPTER_MAX_MB", flag: "adapter-max-mb" },
  mergedMb: { env: "RUNNER_MERGED_MB", flag: "merged-mb" },
  mergePolicy: { env: "RUNNER_MERGE_POLICY", flag: "merge-policy" },
  mergeHorizonS: { env: "RUNNER_MERGE_HORIZON_S", flag: "merge-horizon-s" },
  maxBatch: { env: "RUNNER_MAX_BATCH", flag: "max-batch" },
  maxTokens: { env: "RUNNER_MAX_TOKENS", flag: "max-tokens" },
  maxQueue: { env: "RUNNER_MAX_QUEUE", flag: "max-queue" },
  prefillChunk: { env: "RUNNER_PREFILL_CHUNK", flag: "prefill-chunk" },
  prefillTokens: { env: "RUNNER_PREFILL_TOKENS", flag: "prefill-tokens" },
  modelCache: { env: "LORAEDGE_MODEL_CACHE", flag: "model-cache" },
  drainMs: { env: "RUNNER_DRAIN_MS", flag: "drain-ms" },
  sseKeepAliveMs: { env: "RUNNER_SSE_KEEPALIVE_MS", flag: "sse-keepalive-ms" },
  stallLimitMs: { env: "RUNNER_STALL_LIMIT_MS", flag: "stall-limit-ms" },
  replayWindowS: { env: "RUNNER_REPLAY_WINDOW_S", flag: "replay-window-s" },
  logLevel: { env: "RUNNER_LOG_LEVEL", flag: "log-level" },
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Reads the configuration: flags win over environment variables; empty values count as unset.
 * Throws ConfigError listing every invalid option by its variable name.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  argv: string[] = process.argv.slice(2),
): RunnerConfig {
  const options = Object.fromEntries(
    Object.values(CONFIG_SOURCES).map(({ flag }) => [flag, { type: "string" as const }]),
  );
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | undefined
    >;
  } catch (e) {
    throw new ConfigError(`bad command line: ${(e as Error).message}`);
  }
  const raw: Record<string, string> = {};
  for (const [key, { env: name, flag }] of Object.entries(CONFIG_SOURCES)) {
    const value = (flags[flag] as string | undefined) ?? env[name];
    if (value !== undefined && value !== "") raw[key] = value;
  }
  const parsed = runnerConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path[0] as ConfigKey | undefined;
      const source = key ? CONFIG_SOURCES[key] : undefined;
      const where = source ? `${source.env} (--${source.flag})` : "config";
      return `${where}: ${issue.message}`;
    });
    throw new ConfigError(`invalid runner configuration:\n  ${lines.join("\n  ")}`);
  }
  return parsed.data;
}
