/**
 * A model directory on disk: manifest.json (core's ModelManifest), graph.json (how to drive the
 * graph), the ONNX graph, its external weights, and tokenizer.json for "hf" tokenizers.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { modelManifestSchema, type ModelManifest } from "#core/manifest/model-manifest";
import { graphSpecSchema, type GraphSpec } from "./graph-spec.js";

export const MANIFEST_FILE = "manifest.json";
export const GRAPH_SPEC_FILE = "graph.json";
export const TOKENIZER_FILE = "tokenizer.json";
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

export interface ModelFiles {
  manifest: ModelManifest;
  spec: GraphSpec;
  graph: Uint8Array;
  weights: Uint8Array;
  /** Parsed tokenizer.json and tokenizer_config.json for "hf" tokenizers. */
  tokenizerJson?: unknown;
  tokenizerConfig?: unknown;
}

function stableJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** Writes every file of a model directory (the directory is created). */
export async function writeModelDir(dir: string, files: ModelFiles): Promise<void> {
  modelManifestSchema.parse(files.manifest);
  graphSpecSchema.parse(files.spec);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, files.spec.graphFile), files.graph);
  await fs.writeFile(path.join(dir, files.spec.weightsFile), files.weights);
  await fs.writeFile(path.join(dir, GRAPH_SPEC_FILE), stableJson(files.spec));
  if (files.tokenizerJson !== undefined) await fs.writeFile(path.join(dir, TOKENIZER_FILE), JSON.stringify(files.tokenizerJson));
  if (files.tokenizerConfig !== undefined) await fs.writeFile(path.join(dir, TOKENIZER_CONFIG_FILE), JSON.stringify(files.tokenizerConfig));
  await fs.writeFile(path.join(dir, MANIFEST_FILE), stableJson(files.manifest));
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Reads and validates a model directory; throws naming the file and the problem. */
export async function readModelDir(dir: string): Promise<ModelFiles> {
  const manifestResult = modelManifestSchema.safeParse(await readJson(path.join(dir, MANIFEST_FILE)));
  if (!manifestResult.success) throw new Error(`${path.join(dir, MANIFEST_FILE)} is not a valid model manifest: ${manifestResult.error.message}`);
  const specResult = graphSpecSchema.safeParse(await readJson(path.join(dir, GRAPH_SPEC_FILE)));
  if (!specResult.success) throw new Error(`${path.join(dir, GRAPH_SPEC_FILE)} is invalid: ${specResult.error.message}`);
  const manifest = manifestResult.data;
  const spec = specResult.data;
  const graph = new Uint8Array(await fs.readFile(path.join(dir, spec.graphFile)));
  const weights = new Uint8Array(await fs.readFile(path.join(dir, spec.weightsFile)));
  const files: ModelFiles = { manifest, spec, graph, weights };
  if (manifest.tokenizer.kind === "hf") {
    files.tokenizerJson = await readJson(path.join(dir, TOKENIZER_FILE));
    try {
      files.tokenizerConfig = await readJson(path.join(dir, TOKENIZER_CONFIG_FILE));
    } catch {
      files.tokenizerConfig = {};
    }
  }
  for (const t of manifest.targets) {
    if (!spec.targets.some((b) => b.module === t.module)) throw new Error(`${dir}: manifest target ${t.module} has no binding in ${GRAPH_SPEC_FILE}`);
  }
  return files;
}
