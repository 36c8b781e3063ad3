import { isStrategyName } from "#core/bake/index";
import type { BakeReportBody } from "#core/wire/bake";
import { registerAdapter } from "../adapters/register-adapter.js";
import { adapterVersionExists, type AdapterWithOwner } from "../adapters/queries.js";
import { parseTags } from "../adapters/refs.js";
import type { TenantScope } from "../app-env.js";
import { badRequest, conflict, notFound, unprocessable } from "../errors/api-error.js";
import { resolveMix, type MixRequestEntry } from "../inference/resolve-mix.js";
import { maxMixAdapters, uploadLimits } from "../limits/config.js";
import { findManifest } from "../runners/catalog.js";
import { bakeOnRunner } from "./bake-on-runner.js";
import {
  compositionNameExists,
  deleteComposition,
  findOwnComposition,
  insertComposition,
  type CompositionWithEntries,
} from "./queries.js";

/** The rules of saved compositions; the routes in routes/compositions.ts only wire these to HTTP. */

/**
 * Saves a named mix: at most MAX_MIX_ADAPTERS entries (400), every adapter visible to the caller
 * (404) and of one base model (422), a name not yet used by the caller (409).
 */
export async function saveComposition(s: TenantScope, name: string, adapters: MixRequestEntry[]): Promise<CompositionWithEntries> {
  const max = maxMixAdapters(s.env);
  if (adapters.length > max) throw badRequest(`a composition may hold at most ${max} adapters`);
  const mix = await resolveMix(s.db, s.tenant.id, null, adapters, max);
  if (await compositionNameExists(s.db, s.tenant.id, name)) throw conflict(`composition '${name}' already exists`);
  const row = await insertComposition(s.db, {
    ownerId: s.tenant.id,
    name,
    baseModel: mix.adapters[0]!.baseModel,
    entries: mix.wire.map((w) => ({ adapterId: w.id, weight: w.weight })),
  });
  const entries = mix.adapters.map((a, i) => ({
    adapterId: a.id,
    ref: `${a.ownerName}/${a.name}@${a.version}`,
    weight: mix.wire[i]!.weight,
  }));
  return { ...row, entries };
}

/** One of the caller's compositions by id or name; 404 otherwise (another tenant's reads as missing). */
export async function ownComposition(s: TenantScope, idOrName: string): Promise<CompositionWithEntries> {
  const row = await findOwnComposition(s.db, s.tenant.id, idOrName);
  if (!row) throw notFound(`composition '${idOrName}' not found`);
  return row;
}

export async function removeComposition(s: TenantScope, idOrName: string): Promise<CompositionWithEntries> {
  const row = await ownComposition(s, idOrName);
  await deleteComposition(s.db, row.id);
  return row;
}

export interface BakeIntoRegistry {
  strategy: string;
  density?: number;
  rank?: number;
  seed?: number;
  name: string;
  version: string;
  visibility: "private" | "public";
  description?: string;
  /** Comma-separated; default "baked". */
  tags?: string;
}

/**
 * Bakes one of the caller's compositions into a new adapter of the caller (on a runner serving its
 * base model, which also measures the result against the exact mix) and registers it like an
 * upload: the baked files are validated the same way; the report is stored with the adapter.
 */
export async function bakeIntoRegistry(
  s: TenantScope,
  idOrName: string,
  body: BakeIntoRegistry,
  requestId?: string,
): Promise<{ row: AdapterWithOwner; report: BakeReportBody }> {
  const comp = await ownComposition(s, idOrName);
  let tags: string[];
  try {
    tags = parseTags(body.tags ?? "baked");
  } catch (e) {
    throw badRequest((e as Error).message);
  }
  if (!isStrategyName(body.strategy)) throw badRequest(`unknown bake strategy '${body.strategy}'`);
  if (await adapterVersionExists(s.db, s.tenant.id, body.name, body.version)) {
    throw conflict(`adapter ${s.tenant.name}/${body.name}@${body.version} already exists (versions are immutable)`);
  }
  const manifest = await findManifest(s.env, s.db, comp.baseModel);
  if (!manifest) throw unprocessable(`base model '${comp.baseModel}' is not served by any runner`);
  const { maxRank } = uploadLimits(s.env);
  const baked = await bakeOnRunner(s, comp, { strategy: body.strategy, density: body.density, rank: body.rank, seed: body.seed }, requestId);
  const description =
    body.description ??
    `Baked from composition '${comp.name}' (${comp.entries.map((e) => `${e.weight}×${e.ref}`).join(" + ")}) with ${body.strategy}`;
  const row = await registerAdapter(
    s.db,
    s.env.ADAPTERS,
    s.tenant,
    manifest,
    maxRank,
    { name: body.name, version: body.version, baseModel: comp.baseModel, visibility: body.visibility, description, tags, bakeReport: JSON.stringify(baked.report) },
    { config: baked.config, configJson: baked.configJson, weights: baked.weights },
  );
  return { row, report: baked.report };
}
