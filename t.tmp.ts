import { importOnnxExport } from "./gpu-runner/src/model-build/import-onnx-export.js";
import { loadModel } from "./gpu-runner/src/model/load-model.js";
import fs from "node:fs";
fs.rmSync("/tmp/llm16", { recursive: true, force: true });
const m = await importOnnxExport("../shared/fixtures/tiny-random-llama-fp16", "/tmp/llm16");
console.log(m.dtype, m.targets.length, m.hiddenSize, m.numLayers, m.vocabSize, m.parameters);
for (const backend of ["node", "web"] as const) {
const model = await loadModel("/tmp/llm16", { backend });
const [r] = await model.step([{ tokens: [1, 5, 100, 2000, 7], cache: null, mix: null }], { allLogits: true });
console.log(backend, r.logits.slice(0, 5));
}
