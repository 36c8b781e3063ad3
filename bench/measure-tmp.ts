// Quick side-by-side: decode step ms on loraedge-small, base on plain vs lora session, distinct mixes.
import { loadBenchModel, randomMix, promptTokens, prefillCaches, decodeTokensPerSecond } from "./lib/workload.js";
import { ensureModel } from "../gpu-runner/src/model-build/index.js";
import { loadModel } from "../gpu-runner/src/model/index.js";
import { createRng } from "#core/random/index";
const B = Number(process.argv[2] ?? 8);
const dir = await ensureModel("loraedge-small");
const model = await loadModel(dir, { backend: "node", threads: 2 });
const rng = createRng(303);
const distinct = Array.from({ length: B }, (_, i) => {
  const terms = 1 + Math.floor(rng.nextFloat() * 3);
  return randomMix(model.manifest, Array.from({ length: terms }, () => 8 * (1 + Math.floor(rng.nextFloat() * 4))), 3000 + B * 100 + i);
});
const prompts = Array.from({ length: B }, (_, i) => promptTokens(model.manifest, 16, i + 1));
const none = prompts.map(() => null);
const shared = prompts.map(() => distinct[0]);
const cd = await prefillCaches(model, prompts, distinct);
const cb = await prefillCaches(model, prompts, none);
const cs = await prefillCaches(model, prompts, shared);
for (let r = 0; r < 4; r++) {
  const d = await decodeTokensPerSecond(model, cd, distinct, 3);
  const b = await decodeTokensPerSecond(model, cb, none, 3);
  const s = await decodeTokensPerSecond(model, cs, shared, 3);
  console.log(`B=${B} round ${r}: distinct ${d.toFixed(1)} base ${b.toFixed(1)} shared ${s.toFixed(1)} tok/s  d/b ${(d / b).toFixed(2)} d/s ${(d / s).toFixed(2)}`);
}
await model.dispose();
