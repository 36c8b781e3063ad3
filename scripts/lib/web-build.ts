/**
 * Builds the web app (`web/`) into `web/dist` with Vite, or only when stale.
 *
 * "Stale" means the sha256 over every input file (web/src, web/index.html, web/vite.config.ts,
 * core/src, package.json) differs from the one written beside the last build
 * (`web/dist/.source-hash`). A hash, not mtimes: a fresh clone, a checkout or a merge all give
 * new mtimes without changing content. Cost: hashing ≈ 200 small files, a few ms.
 *
 * The build goes to a temporary folder that is renamed into place, so a concurrent reader
 * (wrangler dev, a second vitest run) never sees a half-written `web/dist`. Concurrent builders
 * (two test runs, `npm start` beside `npm test`) take turns through a lock folder
 * (`web/.build-lock`, created atomically by mkdir); the second one finds the build fresh and
 * skips it. A lock older than LOCK_STALE_MS (a builder that was killed) is taken over.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const webDir = path.join(repoRoot, "web");
export const webDistDir = path.join(webDir, "dist");
const HASH_FILE = ".source-hash";
const LOCK_DIR = path.join(webDir, ".build-lock");
const LOCK_STALE_MS = 5 * 60_000;
const LOCK_WAIT_MS = 10 * 60_000;

const INPUTS = ["web/src", "web/index.html", "web/vite.config.ts", "core/src", "package.json"];

function listFiles(abs: string): string[] {
  if (!existsSync(abs)) return [];
  if (statSync(abs).isFile()) return [abs];
  return readdirSync(abs, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(abs, e.name)) : e.isFile() ? [path.join(abs, e.name)] : []))
    .filter((f) => !f.endsWith(".test.ts"));
}

/** sha256 over (relative path, content) of every input file, in sorted order. */
export function webSourceHash(): string {
  const hash = createHash("sha256");
  const files = INPUTS.flatMap((p) => listFiles(path.join(repoRoot, p))).sort();
  for (const file of files) {
    hash.update(path.relative(repoRoot, file) + "\0");
    hash.update(readFileSync(file));
    hash.update("\0");
  }
  return hash.digest("hex");
}

/** True when `web/dist` is missing or was built from other sources. */
export function webBuildIsStale(): boolean {
  const hashPath = path.join(webDistDir, HASH_FILE);
  if (!existsSync(hashPath) || !existsSync(path.join(webDistDir, "index.html"))) return true;
  return readFileSync(hashPath, "utf8").trim() !== webSourceHash();
}

/** Runs `fn` holding the build lock (waits for another builder to finish first). */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(LOCK_DIR).mtimeMs;
      } catch {
        continue; // released between mkdir and stat: try again at once
      }
      if (age > LOCK_STALE_MS) {
        rmSync(LOCK_DIR, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`web build: ${LOCK_DIR} held for ${Math.round(age / 1000)} s; remove it if no build is running`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

async function buildUnlocked(): Promise<void> {
  const { build } = await import("vite");
  const sourceHash = webSourceHash();
  const tmpDir = path.join(webDir, `.dist-tmp-${process.pid}-${Date.now()}`);
  try {
    await build({ configFile: path.join(webDir, "vite.config.ts"), build: { outDir: tmpDir, emptyOutDir: true }, logLevel: "warn" });
    writeFileSync(path.join(tmpDir, HASH_FILE), sourceHash + "\n");
    // Workers static assets: never serve the bookkeeping files.
    writeFileSync(path.join(tmpDir, ".assetsignore"), `${HASH_FILE}\n.assetsignore\n`);
    const oldDir = path.join(webDir, `.dist-old-${process.pid}-${Date.now()}`);
    if (existsSync(webDistDir)) renameSync(webDistDir, oldDir);
    renameSync(tmpDir, webDistDir);
    rmSync(oldDir, { recursive: true, force: true });
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Builds `web/` into `web/dist` (always). */
export async function buildWeb(): Promise<void> {
  await withBuildLock(buildUnlocked);
}

/** Builds `web/` only when stale (checked again once the lock is held); returns whether it built. */
export async function buildWebIfStale(): Promise<boolean> {
  if (!webBuildIsStale()) return false;
  return withBuildLock(async () => {
    if (!webBuildIsStale()) return false;
    await buildUnlocked();
    return true;
  });
}
