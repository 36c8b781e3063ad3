/**
 * The edge worker on bare Miniflare: the workerd runtime and local D1/R2 that `wrangler dev` uses,
 * without wrangler dev's own dev-proxy layers (its ProxyWorker, the inspector relay) that exist only in
 * local development. Bench case 8 measures the edge's added latency on both.
 *
 * The worker is bundled as a deploy would bundle it (`wrangler deploy --dry-run --outdir`, which CI
 * also runs); its bindings, vars, compatibility settings and [assets] routing come from wrangler.toml
 * through wrangler's `unstable_getMiniflareWorkerOptions`, the same translation `wrangler dev` makes.
 * D1/R2 persist under `persistDir` in wrangler's local layout (`<dir>/v3`), after the repo's
 * migrations are applied the way `startEdge` applies them.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { applyLocalMigrations, freePort, repoRoot, runWrangler, type EdgeOptions } from "../../scripts/lib/stack.js";

export interface MiniflareEdge {
  url: string;
  stop(): Promise<void>;
}

/** Bundles the worker, applies migrations to `persistDir`, starts it on Miniflare; resolves when it serves. */
export async function startMiniflareEdge(
  options: Omit<EdgeOptions, "timeoutMs" | "onLine"> & {
    /** Opens workerd's V8 inspector on this port (a CPU profile of the worker: Chrome DevTools or bench/out scripts). */
    inspectorPort?: number;
    /** Bundles the worker of this checkout instead of this one (A/B runs against another commit). */
    repoRoot?: string;
  },
): Promise<MiniflareEdge> {
  const bundleDir = mkdtempSync(path.join(tmpdir(), "loraedge-bundle-"));
  try {
    const root = options.repoRoot ?? repoRoot;
    await runWrangler(["deploy", "--dry-run", "--outdir", bundleDir], {}, root);
    const bundle = path.join(bundleDir, "index.js");
    await applyLocalMigrations(options.persistDir);
    // modulesRules (how wrangler dev loads unbundled imports) has no use for a one-file bundle.
    const { modulesRules: _unbundled, ...workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml")).workerOptions;
    // Miniflare 5 takes its own option shape; wrangler converts its v4-shaped options the same way.
    const mf = new Miniflare(
      convertV4MiniflareOptions({
        host: "127.0.0.1",
        port: options.port || (await freePort()),
        resourcePersistencePath: path.join(options.persistDir, "v3"),
        enableDevRegistry: false,
        ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
        // The worker's one log line per request is written by workerd as under wrangler dev; not echoed here.
        handleStructuredLogs: () => {},
        workers: [
          {
            ...workerOptions,
            name: "loraedge",
            rootPath: bundleDir,
            // Miniflare 5 reads a module from `contents` (its v4 `scriptPath` form failed to start here).
            modules: [{ type: "ESModule", path: bundle, contents: readFileSync(bundle, "utf8") }],
            bindings: {
              ...(workerOptions.bindings as Record<string, unknown> | undefined),
              RUNNER_URLS: options.runnerUrls.join(","),
              RUNNER_SECRET: options.runnerSecret,
              ADMIN_TOKEN: options.adminToken,
              ...options.vars,
            },
          },
        ],
      }),
    );
    const url = (await mf.ready).origin;
    return {
      url,
      async stop() {
        await mf.dispose();
        rmSync(bundleDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(bundleDir, { recursive: true, force: true });
    throw error;
  }
}
