import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildLlamaGraph } from "./llama-graph.js";
import { llamaManifest } from "./llama-manifest.js";
import { MANIFEST_FILE, writeModelDir } from "./model-dir.js";
import { isPresetId, MODEL_PRESETS, type ModelPresetId } from "./presets.js";
import { seededLlamaCheckpoint } from "./seeded-checkpoint.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** $LORAEDGE_MODEL_CACHE, else <repo>/.cache/models. */
export function defaultModelCacheDir(): string {
  return process.env.LORAEDGE_MODEL_CACHE || path.join(REPO_ROOT, ".cache", "models");
}

export interface BuildModelOptions {
  /** Override the preset's seed (the manifest records it). */
  seed?: number;
}

/** Builds a preset into outDir (created): same bytes for the same preset and seed. */
export async function buildModel(presetId: string, outDir: string, opts: BuildModelOptions = {}): Promise<void> {
  if (!isPresetId(presetId)) throw new Error(`unknown model preset "${presetId}": expected one of ${Object.keys(MODEL_PRESETS).join(", ")}`);
  const preset = MODEL_PRESETS[presetId];
  const seed = opts.seed ?? preset.seed;
  const checkpoint = seededLlamaCheckpoint(preset.config, seed);
  const built = buildLlamaGraph(checkpoint);
  const manifest = llamaManifest({
    id: preset.id,
    config: preset.config,
    tokenizer: preset.tokenizer,
    maxRank: preset.maxRank,
    source: { builder: "loraedge", preset: preset.id, seed, config: preset.config },
  });
  await writeModelDir(outDir, { manifest, spec: built.spec, graph: built.graph, weights: built.weights });
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

const inFlight = new Map<string, Promise<string>>();

/**
 * The directory of model `id` in cacheDir, building a preset first if it is missing. The build
 * goes into a temporary sibling directory that is renamed into place, so a crash never leaves
 * a half-written model; a concurrent builder that wins the rename is accepted.
 */
export function ensureModel(id: string, cacheDir: string = defaultModelCacheDir()): Promise<string> {
  const dir = path.join(cacheDir, id);
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = (async () => {
      if (await exists(path.join(dir, MANIFEST_FILE))) return dir;
      if (!isPresetId(id)) throw new Error(`model "${id}" is not in ${cacheDir} and is not a buildable preset (${Object.keys(MODEL_PRESETS).join(", ")})`);
      await fs.mkdir(cacheDir, { recursive: true });
      const tmp = await fs.mkdtemp(path.join(cacheDir, `.${id}.tmp-`));
      try {
        await buildModel(id as ModelPresetId, tmp);
        try {
          await fs.rename(tmp, dir);
        } catch (err) {
          if (!(await exists(path.join(dir, MANIFEST_FILE)))) throw err;
        }
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
      return dir;
    })().finally(() => inFlight.delete(dir));
    inFlight.set(dir, pending);
  }
  return pending;
}

/** A fresh temporary directory (tests and tools). */
export function tempModelDir(prefix = "loraedge-model-"): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}
