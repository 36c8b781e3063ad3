/**
 * One entry point for bringing a model in (`npm run model:import`): detects the source kind,
 * imports into a temporary sibling of the destination and renames it into place, so a failed
 * import never leaves a half-written model directory (and never replaces an existing one).
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { decodeModel, encodeModel, upcastFloat16 } from "../onnx/index.js";
import { GRAPH_SPEC_FILE, MANIFEST_FILE } from "../model/model-dir.js";
import { defaultModelCacheDir } from "./build-model.js";
import { importHfCheckpoint } from "./import-hf-checkpoint.js";
import { importOnnxExport } from "./import-onnx-export.js";

export type ModelSourceKind = "hf-checkpoint" | "genai-export";

export interface ImportModelOptions {
  /** Model id (default: the source directory's name). */
  id?: string;
  /** Stored weight dtype. HF checkpoints: fp32 (default) or fp16. GenAI exports: the export's (default), or fp32 for an fp16 export. */
  dtype?: "fp32" | "fp16";
  /** Largest adapter rank accepted (manifest maxRank, default 64). */
  maxRank?: number;
  /** Destination directory (default: <model cache>/<id>). */
  out?: string;
  /** Model cache (default: $LORAEDGE_MODEL_CACHE or <repo>/.cache/models). */
  cacheDir?: string;
  /** Called as weight files are read: bytes read so far, bytes in all. */
  onProgress?: (done: number, total: number) => void;
}

export interface ImportedModel {
  dir: string;
  kind: ModelSourceKind;
  manifest: ModelManifest;
  /** Bytes of the stored weights file. */
  weightBytes: number;
}

async function isFile(file: string): Promise<boolean> {
  return fs.stat(file).then((s) => s.isFile(), () => false);
}

/** What kind of model directory `source` is; throws naming what is missing. */
export async function detectModelSource(source: string): Promise<ModelSourceKind> {
  const stat = await fs.stat(source).catch(() => null);
  if (!stat) throw new Error(`source ${source} does not exist`);
  if (!stat.isDirectory()) throw new Error(`source ${source} is not a directory`);
  if (await isFile(path.join(source, "genai_config.json"))) return "genai-export";
  if (await isFile(path.join(source, "config.json"))) return "hf-checkpoint";
  throw new Error(`source ${source} is neither a Hugging Face checkpoint (config.json + *.safetensors) nor an ONNX Runtime GenAI export (genai_config.json + model.onnx)`);
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Imports `source` into the model cache (or opts.out) atomically. */
export async function importModel(source: string, opts: ImportModelOptions = {}): Promise<ImportedModel> {
  const kind = await detectModelSource(source);
  const id = opts.id ?? path.basename(path.resolve(source));
  if (!ID.test(id)) throw new Error(`model id "${id}" must be 1-128 letters, digits, ".", "_" or "-" (pass --id)`);
  if (opts.maxRank !== undefined && !(Number.isInteger(opts.maxRank) && opts.maxRank > 0)) throw new Error(`--max-rank must be a positive integer, got ${opts.maxRank}`);
  const out = path.resolve(opts.out ?? path.join(opts.cacheDir ?? defaultModelCacheDir(), id));
  if (await fs.stat(out).then(() => true, () => false)) throw new Error(`${out} already exists: remove it first or choose another --id / --out`);
  await fs.mkdir(path.dirname(out), { recursive: true });
  const tmp = await fs.mkdtemp(path.join(path.dirname(out), `.${path.basename(out)}.tmp-`));
  try {
    let manifest: ModelManifest;
    if (kind === "hf-checkpoint") {
      manifest = await importHfCheckpoint(source, tmp, { id, dtype: opts.dtype === "fp16" ? "float16" : "float32", ...(opts.maxRank ? { maxRank: opts.maxRank } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    } else {
      manifest = await importOnnxExport(source, tmp, { id, ...(opts.maxRank ? { maxRank: opts.maxRank } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
      if (opts.dtype === "fp16" && manifest.dtype !== "float16") throw new Error("--dtype fp16: this export is fp32; converting an ONNX export to fp16 is not supported (export it with fp16 precision)");
      if (opts.dtype === "fp32" && manifest.dtype === "float16") manifest = await upcastModelDir(tmp, manifest);
    }
    await fs.chmod(tmp, 0o755); // mkdtemp makes it 0700
    const weightBytes = (await fs.stat(path.join(tmp, JSON.parse(await fs.readFile(path.join(tmp, GRAPH_SPEC_FILE), "utf8")).weightsFile))).size;
    try {
      await fs.rename(tmp, out);
    } catch (err) {
      throw new Error(`cannot move the import into ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { dir: out, kind, manifest, weightBytes };
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Rewrites an imported fp16 model directory as fp32 (graph, weights, manifest dtype). */
async function upcastModelDir(dir: string, manifest: ModelManifest): Promise<ModelManifest> {
  const spec = JSON.parse(await fs.readFile(path.join(dir, GRAPH_SPEC_FILE), "utf8")) as { graphFile: string; weightsFile: string };
  const model = decodeModel(new Uint8Array(await fs.readFile(path.join(dir, spec.graphFile))));
  const weights = upcastFloat16(model, new Uint8Array(await fs.readFile(path.join(dir, spec.weightsFile))), spec.weightsFile);
  await fs.writeFile(path.join(dir, spec.graphFile), encodeModel(model));
  await fs.writeFile(path.join(dir, spec.weightsFile), weights);
  const upcast: ModelManifest = { ...manifest, dtype: "float32", source: { ...manifest.source, upcastFrom: "float16" } };
  await fs.writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(upcast, null, 2) + "\n");
  return upcast;
}

/** The lines `model:import` prints about an imported model. */
export function describeImport(m: ImportedModel): string[] {
  const { manifest } = m;
  const unmerged = manifest.targets.filter((t) => t.mode === "unmerged").length;
  const mergeOnly = manifest.targets.length - unmerged;
  const mb = (m.weightBytes / 1e6).toFixed(m.weightBytes < 1e7 ? 2 : 0);
  return [
    `imported ${manifest.id} (${m.kind === "hf-checkpoint" ? "Hugging Face checkpoint" : `ONNX Runtime GenAI export, ${String(manifest.source?.family)}`}) into ${m.dir}`,
    `  family ${manifest.architecture}, ${manifest.numLayers} layers, hidden ${manifest.hiddenSize}, heads ${manifest.numHeads} (KV ${manifest.numKvHeads}, head dim ${manifest.headDim}), intermediate ${manifest.intermediateSize}, vocabulary ${manifest.vocabSize}, context ${manifest.contextLength}`,
    `  targets: ${unmerged} unmerged (LoRA inputs), ${mergeOnly} merge-only; max rank ${manifest.maxRank}`,
    `  dtype ${manifest.dtype}, ${manifest.parameters.toLocaleString("en-US")} parameters, weights ${mb} MB`,
    `  serve it: RUNNER_MODELS=${manifest.id} npm start`,
  ];
}
