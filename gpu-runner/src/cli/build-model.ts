/**
 * npm run model:build -- <preset-id> [--out dir] [--seed n]
 * Builds a preset (default into the model cache: $LORAEDGE_MODEL_CACHE or <repo>/.cache/models).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { buildModel, defaultModelCacheDir, ensureModel, MODEL_PRESETS } from "../model-build/index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: "string" }, seed: { type: "string" } },
});
const id = positionals[0];
if (!id || positionals.length > 1) {
  console.error(`usage: npm run model:build -- <${Object.keys(MODEL_PRESETS).join("|")}> [--out dir] [--seed n]`);
  process.exit(2);
}
const t0 = performance.now();
try {
  let dir: string;
  if (values.out || values.seed) {
    dir = path.resolve(values.out ?? path.join(defaultModelCacheDir(), id));
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
    await buildModel(id, dir, seed === undefined ? {} : { seed });
  } else {
    dir = await ensureModel(id);
  }
  console.log(`${id}: ${dir} (${Math.round(performance.now() - t0)} ms)`);
} catch (err) {
  console.error(`model:build failed: ${(err as Error).message}`);
  process.exit(1);
}
