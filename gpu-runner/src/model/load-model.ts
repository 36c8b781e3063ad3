import { loadBackend } from "../backend/index.js";
import { decodeModel, encodeModel, upcastFloat16 } from "../onnx/index.js";
import { createByteTokenizer, createHfTokenizer } from "../tokenizer/index.js";
import { readModelDir } from "./model-dir.js";
import { createOnnxModel } from "./onnx-model.js";
import type { BaseModel, LoadModelOptions, Tokenizer } from "./types.js";

/** Whether an fp16 model is converted to fp32 at load under these options ("auto": on the CPU EP and the web backend). */
export function upcastsFloat16(opts: LoadModelOptions): boolean {
  const policy = opts.float16 ?? "auto";
  if (policy !== "auto") return policy === "upcast";
  return opts.backend === "web" || (opts.executionProvider ?? "cpu") === "cpu";
}

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
  let { graph, weights } = files;
  if (manifest.dtype === "float16" && upcastsFloat16(opts)) {
    const model = decodeModel(graph);
    weights = upcastFloat16(model, weights, files.spec.weightsFile);
    graph = encodeModel(model);
  }
  const backend = await loadBackend(opts.backend);
  return createOnnxModel({
    backend,
    manifest,
    spec: files.spec,
    graph,
    weights,
    tokenizer,
    ...(opts.plainSession !== undefined ? { plainSession: opts.plainSession } : {}),
    ...(opts.loraVariants !== undefined ? { loraVariants: opts.loraVariants } : {}),
    sessionOptions: {
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.executionProvider ? { executionProvider: opts.executionProvider } : {}),
    },
  });
}
