import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildLlamaGraph } from "./llama-graph.js";
import { llamaManifest } from "./llama-manifest.js";
import { MANIFEST_FILE, writeModelDir } from "../model/model-dir.js";
import { isPresetId, MODEL_PRESETS, type ModelPresetId } from "./presets.js";
import { seededLlamaCheckpoint } from "./seeded-checkpoint.js";

/**
 * Bumped whenever the builder's output changes (graph layout, weight generation, manifest):
 * ensureModel rebuilds cached presets made by another version.
 */
export const BUILDER_VERSION = 7;

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
    source: { builder: "loraedge", builderVersion: BUILDER_VERSION, preset: preset.id, seed, config: preset.config },
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

/** True when dir holds this preset as the current builder makes it (same version, seed and sizes). */
async function isCurrentPreset(dir: string, id: ModelPresetId): Promise<boolean> {
  try {
    const manifest = JSON.parse(await fs.readFile(path.join(dir, MANIFEST_FILE), "utf8")) as { source?: Record<string, unknown> };
    const preset = MODEL_PRESETS[id];
    return (
      manifest.source?.builderVersion === BUILDER_VERSION &&
      manifest.source?.seed === preset.seed &&
      JSON.stringify(manifest.source?.config) === JSON.stringify(preset.config)
    );
  } catch {
    return false;
  }
}

const inFlight = new Map<string, Promise<string>>();

/**
 * The directory of model `id` in cacheDir, building a preset first if it is missing. The build
 * goes into a temporary sibling directory that is renamed into place, so a crash never leaves
 * a half-written model; a concurrent builder that wins the rename is accepted. A cached preset
 * made by another builder version (or with other sizes/seed) is rebuilt. Non-preset models
 * (imports) are returned when present.
 */
export function ensureModel(id: string, cacheDir: string = defaultModelCacheDir()): Promise<string> {
  const dir = path.join(cacheDir, id);
  let pending = inFlight.get(dir);
  if (!pending) {
    pending = (async () => {
      const hasModel = await exists(path.join(dir, MANIFEST_FILE));
      if (!isPresetId(id)) {
        if (hasModel) return dir;
        throw new Error(`model "${id}" is not in ${cacheDir} and is not a buildable preset (${Object.keys(MODEL_PRESETS).join(", ")})`);
      }
      if (hasModel && (await isCurrentPreset(dir, id))) return dir;
      await fs.mkdir(cacheDir, { recursive: true });
      const tmp = await fs.mkdtemp(path.join(cacheDir, `.${id}.tmp-`));
      try {
        await buildModel(id, tmp);
        if (hasModel) {
          // Stale build (older builder or preset): move it aside, then swap the new one in.
          const trash = `${tmp}.stale`;
          await fs.rename(dir, trash).catch(() => undefined);
          await fs.rm(trash, { recursive: true, force: true });
        }
        try {
          await fs.rename(tmp, dir);
        } catch (err) {
          if (!(await isCurrentPreset(dir, id))) throw err;
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
