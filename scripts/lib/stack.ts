/**
 * Starts the real services as child processes: the gpu-runner (Node + ONNX Runtime) and the
 * edge worker under `wrangler dev` (local D1 + R2). Used by `npm start` and by end-to-end
 * tests, so both exercise the same start-up path.
 *
 * Every child runs under the Node that runs this module (Node 22 from the `node` devDependency
 * when started through npm scripts or vitest) in its own process group, so `stop()` ends the
 * whole tree (wrangler → workerd) and a terminal's Ctrl-C reaches only the orchestrator.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildWebIfStale } from "./web-build.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** wrangler makes no network calls with these (telemetry, update check, Request.cf). */
export const WRANGLER_OFFLINE_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
} as const;

const wranglerBin = path.join(repoRoot, "node_modules/wrangler/bin/wrangler.js");
const tsxLoader = "tsx";

/** Asks the OS for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface Service {
  name: string;
  url: string;
  process: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
  /** SIGTERM the process group; SIGKILL after `graceMs`. Resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  /** Last lines of output, for error messages. */
  tail(): string;
}

interface SpawnOptions {
  name: string;
  args: string[];
  env: Record<string, string | undefined>;
  /** Resolves the service URL once ready; called on every output line. */
  readyFromLine?: (line: string) => string | null;
  /** Or: poll this URL until it answers 2xx. */
  readyUrl?: string;
  timeoutMs: number;
  /** Forward output lines to this sink (default: keep only the tail). */
  onLine?: (line: string) => void;
}

function spawnService(options: SpawnOptions): Promise<Service> {
  const child = spawn(process.execPath, options.args, {
    cwd: repoRoot,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const lines: string[] = [];
  let exitValue: number | string | null = null;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      exitValue = code ?? signal ?? "unknown";
      resolve(exitValue);
    });
  });
  const tail = () => lines.slice(-40).join("\n");

  let onReadyLine: ((line: string) => void) | null = null;
  const consume = (stream: NodeJS.ReadableStream) => {
    let buffered = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).replace(/\r$/, "");
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        if (lines.length > 400) lines.splice(0, lines.length - 200);
        options.onLine?.(line);
        onReadyLine?.(line);
      }
    });
  };
  consume(child.stdout!);
  consume(child.stderr!);

  const stop = async (graceMs = 8000) => {
    if (exitValue !== null) return;
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };

  return new Promise<Service>((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | null, url?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      onReadyLine = null;
      if (error) {
        void stop(1000).then(() => reject(error));
      } else {
        resolve({ name: options.name, url: url!, process: child, exited, stop, tail });
      }
    };
    const timeout = setTimeout(
      () => finish(new Error(`${options.name} did not become ready within ${options.timeoutMs} ms.\n${tail()}`)),
      options.timeoutMs,
    );
    void exited.then((code) =>
      finish(new Error(`${options.name} exited (${code}) before it was ready.\n${tail()}`)),
    );
    if (options.readyFromLine) {
      onReadyLine = (line) => {
        const url = options.readyFromLine!(line);
        if (url) finish(null, url);
      };
    }
    if (options.readyUrl) {
      const target = options.readyUrl;
      const poll = async () => {
        while (!settled) {
          try {
            const res = await fetch(target);
            if (res.ok) return finish(null, new URL(target).origin);
          } catch {
            /* not up yet */
          }
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      void poll();
    }
  });
}

export interface RunnerOptions {
  /** 0 or absent: a free port. */
  port?: number;
  host?: string;
  secret: string;
  /** Worker base URL the runner fetches adapters from. */
  edgeUrl?: string;
  /** Comma list of model presets or dirs (default: the runner's default, loraedge-tiny). */
  models?: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  onLine?: (line: string) => void;
}

/**
 * glibc allocator settings the runner runs under: freed weight buffers (8–48 MiB) stay in the heap and are
 * recycled instead of being unmapped and faulted in fresh, for fast re-creation of sessions with new weight
 * buffers (see shared/docs/onnxruntime.md). `npm run bench` runs under the same settings (bench/run.ts).
 */
export const RUNNER_ALLOCATOR_ENV = { MALLOC_MMAP_THRESHOLD_: "33554432", MALLOC_TRIM_THRESHOLD_: "4294967296" } as const;

const RUNNER_READY = /loraedge-runner listening on (http:\/\/\S+)/;

/** Spawns `gpu-runner/src/main.ts`; resolves when it prints its "listening" line. */
export function startRunner(options: RunnerOptions): Promise<Service> {
  return spawnService({
    name: "gpu-runner",
    args: ["--import", tsxLoader, path.join(repoRoot, "gpu-runner/src/main.ts")],
    env: {
      RUNNER_PORT: String(options.port ?? 0),
      RUNNER_HOST: options.host ?? "127.0.0.1",
      RUNNER_SECRET: options.secret,
      RUNNER_EDGE_URL: options.edgeUrl,
      RUNNER_MODELS: options.models,
      ...RUNNER_ALLOCATOR_ENV,
      ...options.env,
    },
    readyFromLine: (line) => RUNNER_READY.exec(line)?.[1] ?? null,
    timeoutMs: options.timeoutMs ?? 180_000,
    onLine: options.onLine,
  });
}

/** Runs wrangler with the offline switches (in `cwd`, this repo by default); resolves with its output, rejects on failure. */
export function runWrangler(args: string[], env: Record<string, string> = {}, cwd = repoRoot): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin, ...args], {
      cwd,
      env: { ...process.env, ...WRANGLER_OFFLINE_ENV, CI: "true", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(output) : reject(new Error(`wrangler ${args.join(" ")} failed (${code}):\n${output}`)),
    );
  });
}

/** Applies migrations/ to the local D1 database kept in `persistDir`. */
export function applyLocalMigrations(persistDir: string): Promise<string> {
  return runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir]);
}

export interface EdgeOptions {
  port?: number;
  runnerUrls: string[];
  runnerSecret: string;
  adminToken: string;
  /** Local D1/R2 state folder (wrangler --persist-to). */
  persistDir: string;
  vars?: Record<string, string>;
  timeoutMs?: number;
  onLine?: (line: string) => void;
}

/** Applies migrations, then starts `wrangler dev`; resolves when /healthz answers. */
export async function startEdge(options: EdgeOptions): Promise<Service> {
  // wrangler dev serves web/dist as static assets ([assets] in wrangler.toml): build it when stale.
  await buildWebIfStale();
  await applyLocalMigrations(options.persistDir);
  const port = options.port || (await freePort());
  const inspectorPort = await freePort();
  const vars: Record<string, string> = {
    RUNNER_URLS: options.runnerUrls.join(","),
    RUNNER_SECRET: options.runnerSecret,
    ADMIN_TOKEN: options.adminToken,
    ...options.vars,
  };
  return spawnService({
    name: "wrangler dev",
    args: [
      wranglerBin,
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      options.persistDir,
      "--show-interactive-dev-session=false",
      "--log-level",
      "info",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ],
    env: { ...WRANGLER_OFFLINE_ENV },
    readyUrl: `http://127.0.0.1:${port}/healthz`,
    timeoutMs: options.timeoutMs ?? 120_000,
    onLine: options.onLine,
  });
}
