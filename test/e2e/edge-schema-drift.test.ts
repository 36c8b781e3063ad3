// migrations/ must be exactly what drizzle-kit generates from workers/src/db/schema.ts: run
// `drizzle-kit generate` against a copy of migrations/ and require "nothing to migrate".
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../scripts/lib/stack.js";

describe("D1 schema vs migrations", () => {
  it("drizzle-kit finds no schema change that migrations/ lacks", () => {
    // Inside the repo (.cache is git-ignored) so drizzle-orm resolves from node_modules.
    const cache = path.join(repoRoot, ".cache");
    mkdirSync(cache, { recursive: true });
    const dir = mkdtempSync(path.join(cache, "schema-drift-"));
    try {
      cpSync(path.join(repoRoot, "migrations"), path.join(dir, "migrations"), { recursive: true });
      const rel = path.relative(repoRoot, dir);
      writeFileSync(
        path.join(dir, "drizzle.config.ts"),
        `export default ${JSON.stringify({ dialect: "sqlite", schema: "./workers/src/db/schema.ts", out: `./${rel}/migrations` })};\n`,
      );
      const before = readdirSync(path.join(dir, "migrations")).sort();
      const drizzleKit = path.join(repoRoot, "node_modules/drizzle-kit/bin.cjs");
      const run = spawnSync(process.execPath, [drizzleKit, "generate", "--config", path.join(rel, "drizzle.config.ts")], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 60_000,
      });
      const output = `${run.stdout}\n${run.stderr}`;
      expect(run.status, output).toBe(0);
      expect(output).toContain("No schema changes");
      expect(readdirSync(path.join(dir, "migrations")).sort()).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
