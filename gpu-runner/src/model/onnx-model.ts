/**
 * The runner's models on ONNX Runtime: the base model (per-row and shared LoRA inputs) and merged
 * variants (W′ = W + ΔW baked into a session built from the same graph via externalData).
 */
import type { Backend, HostTensor, Session } from "../backend/index.js";
import { expectFloat32 } from "../backend/index.js";
import { DataType, decodeModel, toNumber } from "../onnx/index.js";
import type { ComposedMix } from "#core/lora/types";
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { GraphSpec, TargetBinding } from "./graph-spec.js";
import { RowKvCache } from "./kv-cache.js";
import { LoraBankPair } from "./lora-bank-pair.js";
import { planLoraPaths } from "./lora-paths.js";
import { LoraVariantSessions, type LoraVariantsMode } from "./lora-variants.js";
import { weightView, WeightMerger } from "./merge-weights.js";
import { stripLoraInputs } from "./strip-lora.js";
import { packLora, packPast, padsZeroWidth, packTokens, pastElements, presentNames, unpackLogits, unpackPresent, type PackedRow } from "./step-batch.js";
import type { BaseModel, ModelVariant, StepOptions, StepRow, StepRowResult, StepTimings, Tokenizer } from "./types.js";

/** Where an external initializer lives in the weights file. */
export interface WeightLocation {
  offset: number;
  length: number;
  dims: number[];
  /** ONNX TensorProto data type (1 = FLOAT, 10 = FLOAT16). */
  dataType: number;
}

/** Initializer name → location, for initializers stored in `weightsFile`. */
export function externalWeightTable(graph: Uint8Array, weightsFile: string): Map<string, WeightLocation> {
  const table = new Map<string, WeightLocation>();
  for (const init of decodeModel(graph).graph?.initializer ?? []) {
    if (init.dataLocation !== 1 || !init.name) continue;
    const entry = Object.fromEntries((init.externalData ?? []).map((e) => [e.key, e.value]));
    if (entry.location !== weightsFile) continue;
    table.set(init.name, { offset: Number(entry.offset ?? 0), length: Number(entry.length), dims: (init.dims ?? []).map(toNumber), dataType: init.dataType ?? DataType.FLOAT });
  }
  return table;
}

interface SharedModelState {
  backend: Backend;
  manifest: ModelManifest;
  spec: GraphSpec;
  graph: Uint8Array;
  /** The graph without LoRA inputs (strip-lora.ts), or null when it cannot be stripped or is not wanted. */
  plainGraph: Uint8Array | null;
  /** The base weights file (not copied per variant; merged variants copy then patch). */
  weights: Uint8Array;
  weightTable: Map<string, WeightLocation>;
  dims: Map<string, { in: number; out: number; mode: "unmerged" | "merge-only" }>;
  bindings: Map<string, TargetBinding>;
  sessionOptions: { threads?: number; executionProvider?: string };
  /** Merge targets whose weight merged sessions cannot write through a view (misaligned, merge-weights.ts), with the reason. */
  unmergeable: Map<string, string>;
  /** Identity that caches carry: a cache is only valid for this model (and its merged variants' own identity). */
}

/** Checks a mix against the manifest; `allowMergeOnly` for merged sessions. */
export function validateMix(state: Pick<SharedModelState, "dims">, mix: ComposedMix, allowMergeOnly: boolean): void {
  for (const [name, m] of mix.modules) {
    const target = state.dims.get(name);
    if (!target) throw new Error(`mix module ${name} is not a target of this model`);
    if (!allowMergeOnly && target.mode === "merge-only") throw new Error(`mix module ${name} is merge-only on this model: serve the mix through createMerged()`);
    if (m.inFeatures !== target.in || m.outFeatures !== target.out) throw new Error(`mix module ${name} is ${m.inFeatures}→${m.outFeatures}, model expects ${target.in}→${target.out}`);
    if (!Number.isInteger(m.rank) || m.rank < 0) throw new Error(`mix module ${name} has invalid rank ${m.rank}`);
    if (m.at.length !== m.inFeatures * m.rank) throw new Error(`mix module ${name}: at has ${m.at.length} values, expected [${m.inFeatures}, ${m.rank}]`);
    if (m.bt.length !== m.rank * m.outFeatures) throw new Error(`mix module ${name}: bt has ${m.bt.length} values, expected [${m.rank}, ${m.outFeatures}]`);
  }
}

/** Largest past arena a variant keeps between steps (floats: 256 MB). */
const MAX_KEPT_ARENA = 64 * 1024 * 1024;

class OnnxVariant implements ModelVariant {
  private disposed = false;
  /** Reused buffer for the batched past tensors; taken (null) while a step uses it. */
  private arena: Float32Array | null = null;
  /** The last packed LoRA inputs, the row mixes (immutable) and the paths they were packed with. */
  readonly timings: StepTimings = { steps: 0, stepMs: 0, loraPackMs: 0, loraPackFloats: 0 };
  private lastLora: { mixes: (ComposedMix | null)[]; shared: boolean[]; feeds: Record<string, HostTensor>; fromBank: boolean } | null = null;
  /**
   * Per-row chunks resident between steps (lora-bank.ts) in two banks, so decode steps (the
   * running rows) and prefill steps (the joining rows), alternating, do not evict each other's
   * rows; each step takes the bank where its rows cost least to place (lora-bank-pair.ts).
   */
  private readonly banks = new LoraBankPair();
  /** Runs in flight that read views of a bank: banks are only updated when none is. */
  private bankReaders = 0;

  /**
   * LoRA inputs for these rows (paths by planLoraPaths): reused when the rows carry the same
   * mixes, in the same order, on the same paths as last time (steady decode, or a batch's first
   * decode step after its joint prefill). Per-row chunks come from a resident bank (only joined
   * rows are copied); a step while another run still reads a bank packs afresh (the reference).
   */
  private loraFeeds(packed: readonly PackedRow[]): { feeds: Record<string, HostTensor>; fromBank: boolean } {
    const mixes = packed.map((row) => row.mix);
    const decode = packed.every((row) => row.tokens.length === 1);
    const shared = planLoraPaths(mixes, decode);
    const fromBank = this.bankReaders === 0;
    const last = this.lastLora;
    const sameRows = last !== null && (last.fromBank || !fromBank) && last.mixes.length === mixes.length && mixes.every((mix, i) => mix === last.mixes[i] && shared[i] === last.shared[i]);
    const perRow = mixes.filter((mix, i): mix is ComposedMix => mix !== null && !shared[i]);
    // Same rows on the same paths as last time: the same feeds (views of the bank still holding them).
    if (sameRows) {
      if (fromBank) this.banks.reused(perRow);
      return last;
    }
    const t0 = performance.now();
    const bank = fromBank ? this.banks.take(perRow) : undefined;
    // Packing into a bank rewrites chunks in place module by module: if it throws part-way, the
    // previous step's views would read half-moved chunks, so they are forgotten first.
    this.lastLora = null;
    const copiedBefore = this.banks.copiedFloats;
    let feeds: Record<string, HostTensor>;
    try {
      feeds = packLora(this.state.spec, packed, this.state.dims, shared, bank, { minWidth: padsZeroWidth(this.state.sessionOptions.executionProvider) ? 1 : 0 });
    } catch (e) {
      if (bank) this.banks.failed(bank);
      throw e;
    }
    this.timings.loraPackMs += performance.now() - t0;
    this.timings.loraPackFloats += bank ? this.banks.copiedFloats - copiedBefore : perRowFloats(this.state.spec, feeds);
    this.lastLora = { mixes, shared, feeds, fromBank };
    return this.lastLora;
  }

  /**
   * `lora`: a session of the LoRA graph (null for a merged variant, whose rows never carry a mix);
   * `plain`: a session of the LoRA-free graph (null when the graph could not be stripped).
   * Steps with no mix row run on `plain` when there is one: no LoRA inputs, no LoRA nodes.
   * `variants`: pruned LoRA graphs for steps that feed one whole path empty (lora-variants.ts).
   */
  constructor(
    protected readonly state: SharedModelState,
    protected readonly sessions: { lora: Session | null; plain: Session | null; variants?: LoraVariantSessions },
    readonly weightBytes: number,
    private readonly acceptsMix: boolean,
  ) {
    if (!sessions.lora && !sessions.plain) throw new Error("a model variant needs a session");
  }

  async step(rows: readonly StepRow[], options: StepOptions = {}): Promise<StepRowResult[]> {
    if (this.disposed) throw new Error("model variant is disposed");
    if (rows.length === 0) return [];
    const started = performance.now();
    try {
      return await this.runStep(rows, options);
    } finally {
      this.timings.steps++;
      this.timings.stepMs += performance.now() - started;
    }
  }

  private async runStep(rows: readonly StepRow[], options: StepOptions): Promise<StepRowResult[]> {
    const { manifest, spec } = this.state;
    const packed: PackedRow[] = rows.map((row, i) => {
      if (row.tokens.length === 0) throw new Error(`row ${i}: tokens must be non-empty`);
      for (const t of row.tokens) {
        if (!Number.isInteger(t) || t < 0 || t >= manifest.vocabSize) throw new Error(`row ${i}: token ${t} is outside the vocabulary [0, ${manifest.vocabSize})`);
      }
      let cache: RowKvCache | null = null;
      if (row.cache) {
        if (!(row.cache instanceof RowKvCache) || row.cache.owner !== this) throw new Error(`row ${i}: cache was produced by a different model or variant`);
        cache = row.cache;
      }
      const total = (cache?.length ?? 0) + row.tokens.length;
      if (total > manifest.contextLength) throw new Error(`row ${i}: ${total} tokens exceed the context length ${manifest.contextLength}`);
      if (row.mix) {
        if (!this.acceptsMix) throw new Error(`row ${i}: a merged variant takes rows with mix = null`);
        validateMix(this.state, row.mix, false);
      }
      return { tokens: row.tokens, cache, mix: row.mix };
    });
    const allLogits = options.allLogits ?? false;
    const { feeds, shape } = packTokens(spec, packed, allLogits);
    const need = pastElements(spec, shape);
    let arena: Float32Array | null = null;
    if (need > 0 && need <= MAX_KEPT_ARENA) {
      arena = this.arena && this.arena.length >= need ? this.arena : new Float32Array(Math.min(MAX_KEPT_ARENA, Math.ceil(need * 1.25)));
      this.arena = null; // concurrent steps allocate their own
    }
    let outputs: Awaited<ReturnType<Session["run"]>>;
    try {
      Object.assign(feeds, packPast(spec, packed, shape, arena ?? undefined));
      const plain = this.sessions.plain !== null && (packed.every((row) => row.mix === null) || this.sessions.lora === null);
      const lora = plain ? null : this.loraFeeds(packed);
      if (lora) Object.assign(feeds, lora.feeds);
      const session = plain ? this.sessions.plain! : this.loraSession(feeds);
      if (lora?.fromBank) this.bankReaders++;
      try {
        outputs = await session.run(feeds, [spec.logits, ...presentNames(spec)]);
      } finally {
        if (lora?.fromBank) this.bankReaders--;
      }
    } finally {
      if (arena && (!this.arena || this.arena.length < arena.length)) this.arena = arena;
    }
    const logits = expectFloat32(outputs[spec.logits], spec.logits);
    const vocab = logits.dims[logits.dims.length - 1];
    const perRow = unpackLogits(spec, packed, shape, logits.data, vocab, allLogits);
    const caches = unpackPresent(this, spec, packed, shape, outputs);
    return packed.map((_, i) => ({ logits: perRow[i], cache: caches[i] }));
  }

  /** The LoRA graph's session, or a ready pruned variant when the feeds leave a whole path empty (its stripped inputs are dropped from `feeds`). */
  private loraSession(feeds: Record<string, HostTensor>): Session {
    const picked = this.sessions.variants?.pick(feeds);
    if (!picked) return this.sessions.lora!;
    for (const name of picked.strip) delete feeds[name];
    return picked.session;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.arena = null;
    this.lastLora = null;
    this.banks.clear();
    await this.sessions.variants?.release();
    await this.sessions.lora?.release();
    await this.sessions.plain?.release();
  }
}

export class OnnxBaseModel extends OnnxVariant implements BaseModel {
  private readonly merger: WeightMerger;

  constructor(
    state: SharedModelState,
    sessions: { lora: Session; plain: Session | null; variants?: LoraVariantSessions },
    readonly tokenizer: Tokenizer,
  ) {
    super(state, sessions, 0, true);
    this.merger = new WeightMerger(state.backend);
  }

  get manifest(): ModelManifest {
    return this.state.manifest;
  }

  get unmergeable(): readonly string[] {
    return [...this.state.unmergeable.values()];
  }

  async createMerged(mix: ComposedMix): Promise<ModelVariant & { buildMs: { copy: number; delta: number; session: number } }> {
    validateMix(this.state, mix, true);
    for (const [name, m] of mix.modules) {
      const reason = m.rank === 0 ? undefined : this.state.unmergeable.get(name);
      if (reason) throw new Error(`cannot merge module ${name}: ${reason}`); // before copying the weights
    }
    const t0 = performance.now();
    const base = this.state.weights;
    const weights = base.slice(); // the merged variant's own copy; ORT merges the targets in it in place
    const tCopy = performance.now();
    for (const [name, m] of mix.modules) {
      if (m.rank === 0) continue;
      const binding = this.state.bindings.get(name);
      if (!binding) throw new Error(`mix module ${name} has no weight binding`);
      const loc = this.state.weightTable.get(binding.weight);
      if (!loc) throw new Error(`weight ${binding.weight} of ${name} is not in the external weights file`);
      // A view, never a copy (alignment checked at load, refused above): W′ replaces W in the copy.
      // fp16 weights: merged in fp32 by ORT, rounded to fp16 once.
      if (loc.dataType === DataType.FLOAT16) await this.merger.mergeInPlace(weightView(Uint16Array, weights, binding.weight, loc), binding.layout, m);
      else await this.merger.mergeInPlace(weightView(Float32Array, weights, binding.weight, loc), binding.layout, m);
    }
    const t1 = performance.now();
    // Rows on a merged session carry no mix: the LoRA-free graph when there is one.
    const session = await this.state.backend.createSession(this.state.plainGraph ?? this.state.graph, {
      ...this.state.sessionOptions,
      externalData: [{ path: this.state.spec.weightsFile, data: weights }],
    });
    const t2 = performance.now();
    const variant = new OnnxVariant(this.state, this.state.plainGraph ? { lora: null, plain: session } : { lora: session, plain: null }, weights.byteLength, false);
    return Object.assign(variant, { buildMs: { copy: tCopy - t0, delta: t1 - tCopy, session: t2 - t1 } });
  }

  override async dispose(): Promise<void> {
    await this.merger.dispose();
    await super.dispose();
  }
}

export async function createOnnxModel(args: {
  backend: Backend;
  manifest: ModelManifest;
  spec: GraphSpec;
  graph: Uint8Array;
  weights: Uint8Array;
  tokenizer: Tokenizer;
  sessionOptions: { threads?: number; executionProvider?: string };
  /** Also hold a LoRA-free session for steps without mixes (default true; costs one more copy of the weights). */
  plainSession?: boolean;
  /** Pruned LoRA graphs for steps with one LoRA path empty (lora-variants.ts; default "lazy"). */
  loraVariants?: LoraVariantsMode;
}): Promise<OnnxBaseModel> {
  const { manifest, spec } = args;
  const dims = new Map(manifest.targets.map((t) => [t.module, { in: t.in, out: t.out, mode: t.mode }] as const));
  const bindings = new Map(spec.targets.map((b) => [b.module, b]));
  for (const t of manifest.targets) {
    const b = bindings.get(t.module);
    if (!b) throw new Error(`manifest target ${t.module} has no graph binding`);
    if (t.mode === "unmerged" && (!b.at || !b.bt)) throw new Error(`target ${t.module} is "unmerged" but the graph has no LoRA inputs for it`);
  }
  const weightTable = externalWeightTable(args.graph, spec.weightsFile);
  // Merged sessions write W′ through views of these weights (merge-weights.ts): a layout that would need copies is
  // noted here (BaseModel.unmergeable, logged at load) and refused by createMerged — a model never merged still serves.
  const unmergeable = new Map<string, string>();
  for (const b of spec.targets) {
    const loc = weightTable.get(b.weight);
    if (!loc) continue;
    try {
      if (loc.dataType === DataType.FLOAT16) weightView(Uint16Array, args.weights, b.weight, loc);
      else weightView(Float32Array, args.weights, b.weight, loc);
    } catch (e) {
      unmergeable.set(b.module, (e as Error).message);
    }
  }
  const loraInputs = loraInputNames(spec);
  const plainGraph = args.plainSession === false || loraInputs.size === 0 ? null : stripLoraInputs(args.graph, loraInputs);
  const state: SharedModelState = { backend: args.backend, manifest, spec, graph: args.graph, plainGraph, weights: args.weights, weightTable, dims, bindings, sessionOptions: args.sessionOptions, unmergeable };
  const open = (graph: Uint8Array) => args.backend.createSession(graph, { ...args.sessionOptions, externalData: [{ path: spec.weightsFile, data: args.weights }] });
  const lora = await open(args.graph);
  let plain = null;
  try {
    plain = plainGraph ? await open(plainGraph) : null;
  } catch (e) {
    await lora.release(); // its copy of the weights would otherwise stay in ONNX Runtime
    throw e;
  }
  const mode = args.loraVariants ?? "lazy";
  const variants = mode === "off" || loraInputs.size === 0 ? undefined : new LoraVariantSessions(args.graph, spec, open, mode);
  if (mode === "eager") await variants?.openAll();
  return new OnnxBaseModel(state, { lora, plain, variants }, args.tokenizer);
}

/** Floats of the per-row path's Aᵗ/Bᵗ feeds (what a fresh pack writes for them). */
function perRowFloats(spec: GraphSpec, feeds: Record<string, HostTensor>): number {
  let n = 0;
  for (const b of spec.targets) for (const name of [b.at, b.bt]) if (name && feeds[name]) n += feeds[name].data.length;
  return n;
}

/** Every LoRA graph input the spec names (per-row and shared paths). */
export function loraInputNames(spec: GraphSpec): Set<string> {
  const names = new Set<string>();
  for (const b of spec.targets) for (const n of [b.at, b.bt, b.rows, b.ac, b.bc, b.mask]) if (n) names.add(n);
  return names;
}
