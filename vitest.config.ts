import { defineConfig } from "vitest/config";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import path from "node:path";

// wrangler/miniflare must make no network calls in tests (update check, telemetry, Request.cf).
process.env.WRANGLER_SEND_METRICS = "false";
process.env.WRANGLER_HIDE_BANNER = "true";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

const root = import.meta.dirname;

export default defineConfig({
  test: {
    projects: [
      {
        // Pure unit tests: core (runs anywhere) and the runner's modules (Node).
        test: {
          name: "unit",
          environment: "node",
          include: ["core/src/**/*.test.ts", "client/src/**/*.test.ts", "gpu-runner/src/**/*.test.ts", "cli/src/**/*.test.ts", "web/src/**/*.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // End-to-end: real runner process (and worker) over real HTTP.
        test: {
          name: "e2e",
          environment: "node",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        // Worker integration tests inside workerd (Miniflare's real D1 and R2).
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: path.join(root, "wrangler.toml") },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
                ADMIN_TOKEN: "test-admin-token",
                RUNNER_SECRET: "test-runner-secret",
                LOG_LEVEL: "silent",
                MAX_ADAPTER_BYTES: "1048576",
                // The per-isolate key/adapter cache stays on, with a TTL short enough that a test can outwait it.
                EDGE_CACHE_TTL_MS: "200",
                // Each request reserves exactly its own tokens and slot, and its usage is written after it
                // (the deployed default leases blocks per isolate and writes usage in batches:
                // test/worker/budget-lease.test.ts turns that on).
                BUDGET_LEASE_TOKENS: "0",
                RATE_LEASE_REQUESTS: "0",
                USAGE_FLUSH_MS: "0",
                // Three fake runners (tests answer their requests by spying on fetch).
                RUNNER_URLS: "http://runner-a.test,http://runner-b.test,http://runner-c.test",
                // No background /healthz probes: tests script each runner's answers; probes are
                // tested on their own (test/worker/runner-probes.test.ts sets an interval).
                RUNNER_PROBE_INTERVAL_S: "0",
                // A fake runner that hangs fails its probe within 1 s (the default, 10 s, outlasts a real model step).
                RUNNER_PROBE_TIMEOUT_S: "1",
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          setupFiles: ["test/worker/apply-migrations.ts"],
        },
      },
    ],
  },
});
