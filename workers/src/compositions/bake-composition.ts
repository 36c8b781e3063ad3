import { bake, BakeError, MERGE_STRATEGIES, isStrategyName, type BakeReport, type StrategyName } from "#core/bake/index";
import { MixError } from "#core/compose/index";
import type { MixTerm } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { loadPeftAdapter, writePeftAdapter } from "#core/peft/index";
import { resolveAdapter } from "../adapters/resolve.js";
import type { Db } from "../db/client.js";
import { badRequest, payloadTooLarge, serviceUnavailable, unprocessable } from "../errors/api-error.js";
import { assertMixWithinBounds } from "../validation/mix-bounds.js";
import type { CompositionWithEntries } from "./queries.js";

export interface BakeRequest {
  strategy: StrategyName;
  density?: number;
  rank?: number;
  seed?: number;
}

export interface BakedFiles {
  configJson: string;
  weights: Uint8Array<ArrayBuffer>;
  rank: number;
  targets: string[];
  report: BakeReport;
}

/**
 * Bakes a saved composition into new PEFT files with core's `bake` (in the worker: the
 * adapters are read from R2 and merged here; see workers/README.md for the CPU budget).
 * Every adapter must still be visible to the caller (404 otherwise). Bad options → 400;
 * a result the base model does not accept (e.g. rank above its cap) → 422.
 */
export async function bakeComposition(
  db: Db,
  bucket: R2Bucket,
  tenantId: string,
  comp: CompositionWithEntries,
  req: BakeRequest,
  manifest: ModelManifest,
  maxRank: number,
  limits: { maxBytes: number; maxDenseFloats: number },
): Promise<BakedFiles> {
  const rows = [];
  for (const e of comp.entries) rows.push({ row: await resolveAdapter(db, tenantId, e.adapterId), weight: e.weight });
  // Compositions saved before the bounds existed are checked again here.
  assertMixWithinBounds(rows.map(({ row, weight }) => ({ adapter: { ...row, label: `${row.ownerName}/${row.name}@${row.version}` }, weight })));
  const totalBytes = rows.reduce((s, r) => s + r.row.sizeBytes, 0);
  if (totalBytes > limits.maxBytes) {
    throw payloadTooLarge(`the composition's adapters total ${totalBytes} bytes; the edge bakes at most ${limits.maxBytes} (MAX_BAKE_BYTES)`);
  }
  if (isStrategyName(req.strategy) && MERGE_STRATEGIES[req.strategy].kind === "dense") {
    // Dense strategies hold every term's ΔW [out, in] for each module the mix touches.
    const sizes = new Map(manifest.targets.map((t) => [t.module, t.in * t.out]));
    let floats = 0;
    for (const { row } of rows) for (const module of JSON.parse(row.targets) as string[]) floats += sizes.get(module) ?? 0;
    if (floats > limits.maxDenseFloats) {
      throw unprocessable(
        `${req.strategy} materialises ${floats} dense ΔW floats for this composition; the edge bakes at most ${limits.maxDenseFloats} (MAX_BAKE_DENSE_FLOATS): use linear or svd, which bake from the low-rank factors`,
      );
    }
  }
  const terms: MixTerm[] = [];
  for (const { row, weight } of rows) {
    const object = await bucket.get(row.r2Key);
    if (!object) throw serviceUnavailable(`blob of adapter '${row.id}' is missing from storage`);
    const bytes = new Uint8Array(await object.arrayBuffer());
    terms.push({ adapter: loadPeftAdapter(JSON.parse(row.configJson), bytes), weight });
  }
  let result: ReturnType<typeof bake>;
  try {
    result = bake(terms, { strategy: req.strategy, density: req.density, rank: req.rank, seed: req.seed });
  } catch (e) {
    if (e instanceof BakeError || e instanceof MixError) throw badRequest(`cannot bake: ${e.message}`);
    throw e;
  }
  const cap = Math.min(maxRank, manifest.maxRank);
  const rank = Math.max(0, ...[...result.adapter.modules.values()].map((m) => m.rank));
  if (rank > cap) {
    throw unprocessable(`baked rank ${rank} exceeds the cap ${cap} of ${manifest.id}; pass a smaller \`rank\``);
  }
  const files = writePeftAdapter(result.adapter, { baseModel: comp.baseModel });
  return {
    configJson: JSON.stringify(files.config),
    weights: new Uint8Array(files.safetensors),
    rank,
    targets: [...result.adapter.modules.keys()].sort(),
    report: result.report,
  };
}
