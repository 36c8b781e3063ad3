// Applies the D1 migrations before each test and wipes storage (and the edge's per-isolate
// caches) after it, so every test starts from the schema alone.
import { applyD1Migrations, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach } from "vitest";
import { forgetCachedAdapters } from "../../workers/src/adapters/visible-adapter-cache.js";
import { forgetLedgers } from "../../workers/src/limits/isolate-ledger.js";
import { forgetCachedTenants } from "../../workers/src/tenants/key-cache.js";

beforeEach(async () => {
  await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
  // The isolate outlives the storage reset: its per-isolate caches must not carry rows of the last test.
  forgetCachedTenants();
  forgetCachedAdapters();
  forgetLedgers();
});

afterEach(async () => {
  await reset();
});
