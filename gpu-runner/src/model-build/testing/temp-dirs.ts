/** Temporary folders for model-build tests, removed after the tests that made them. */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll } from "vitest";
import { importOnnxExport } from "../import-onnx-export.js";

/**
 * `tmp()` makes a fresh folder `loraedge-<prefix>-…` under the OS temp dir; every one is removed
 * after the tests of the suite that called `useTempDirs` (its `afterAll`).
 */
export function useTempDirs(prefix: string): () => Promise<string> {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
  });
  return async () => {
    const d = await fs.mkdtemp(path.join(os.tmpdir(), `loraedge-${prefix}-`));
    dirs.push(d);
    return d;
  };
}

/** An ONNX export fixture imported (`importOnnxExport`) into a temp folder before the suite's tests: `imported.dir`. */
export function useImportedExport(fixture: string, prefix: string): { readonly dir: string } {
  const tmp = useTempDirs(prefix);
  const imported = { dir: "" };
  beforeAll(async () => {
    imported.dir = await tmp();
    await importOnnxExport(fixture, imported.dir);
  });
  return imported;
}
