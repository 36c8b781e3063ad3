import { loadBackend } from "../backend/index.js";
import { createByteTokenizer, createHfTokenizer } from "../tokenizer/index.js";
import { readModelDir } from "./model-dir.js";
import { createOnnxModel } from "./onnx-model.js";
import type { BaseModel, LoadModelOptions, Tokenizer } from "./types.js";

/** Loads a model directory (manifest validated) into a session on the chosen backend. */
export async function loadModel(dir: string, opts: LoadModelOptions): Promise<BaseModel> {
  const files = await readModelDir(dir);
  const { manifest } = files;
  let tokenizer: Tokenizer;
  if (manifest.tokenizer.kind === "byte") {
    tokenizer = createByteTokenizer();
  } else {
    tokenizer = createHfTokenizer(files.tokenizerJson, files.tokenizerConfig, { bosId: manifest.tokenizer.bosId, eosId: manifest.tokenizer.eosId });
  }
  const backend = await loadBackend(opts.backend);
  return createOnnxModel({
    backend,
    manifest,
    spec: files.spec,
    graph: files.graph,
    weights: files.weights,
    tokenizer,
    ...(opts.plainSession !== undefined ? { plainSession: opts.plainSession } : {}),
    sessionOptions: {
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.executionProvider ? { executionProvider: opts.executionProvider } : {}),
    },
  });
}
