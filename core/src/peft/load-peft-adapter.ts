import { AdapterFormatError } from "../errors.js";
import type { LoraAdapter, LoraModule } from "../lora/types.js";
import type { SafetensorsDtype } from "../safetensors/dtypes.js";
import { readSafetensors, type SafetensorsTensor } from "../safetensors/read-safetensors.js";
import type { Float32Alloc } from "../dtype/float32-alloc.js";
import { tensorToFloat32Checked, u16View } from "../safetensors/tensor-to-float32.js";
import { factorValues, firstNonFiniteHalf, HalfFactor, type HalfDtype, type LoraFactor } from "../lora/factor.js";
import { widenF16InPlace, type WidenedTensor } from "../safetensors/widen-in-place.js";
import { forbidWidening, wasWidened } from "../simd/kernels.js";
import { moduleScaleResolver } from "./module-scale.js";
import { isEmbeddingOrHeadModule, parsePeftConfig, type PeftConfig } from "./peft-config.js";
import { parsePeftKey } from "./peft-keys.js";
import { compileTargetMatcher } from "./target-modules.js";

export interface LoadPeftAdapterOptions {
  /** Cap for the safetensors JSON header (default 100 MB). */
  maxHeaderBytes?: number;
  /**
   * Copy A and B out of the input bytes. Default false: aligned little-endian F32 tensors are
   * zero-copy views that alias `safetensorsBytes` (do not mutate or reuse that buffer).
   */
  copy?: boolean;
  /**
   * Where converted (F16, BF16) tensors are written: `alloc(n)` may hand out uninitialized or
   * recycled memory, since the conversion overwrites every element (default: `new Float32Array(n)`,
   * zeroed). Bench case 6's baseline of the converting load passes uninitialized buffers.
   */
  alloc?: Float32Alloc;
  /**
   * Keep F16 and BF16 tensors as their 16-bit values (`HalfFactor`) instead of converting them to F32
   * (default false), each checked for ±Inf/NaN by one read (the SIMD scan). They are views of the
   * input bytes where 2-aligned, else (or with `copy`) copies; like F32 views they alias the input, so
   * do not mutate or reuse it, and bytes received for widening in place lose that widening (a later
   * load converts into new arrays). The adapter is then a `LoraAdapter<LoraFactor>`: half the bytes in
   * memory, and `composeMix` widens the values as it composes. The runner loads this way
   * (`gpu-runner/src/adapters/parse-adapter.ts`), and the edge validates uploads so.
   */
  keepHalves?: boolean;
}

/** What the edge stores in its registry record. */
export interface AdapterSummary {
  baseModel: string | null;
  /** Module paths, sorted. */
  targets: string[];
  /** Distinct last path components of the targets (e.g. ["q_proj", "v_proj"]), sorted. */
  targetNames: string[];
  /** Largest module rank. */
  rank: number;
  /** Distinct module ranks, ascending. */
  ranks: number[];
  /** Config lora_alpha (null when not known, e.g. imported from .onnx_adapter). */
  alpha: number | null;
  useRslora: boolean;
  /** Scale of the modules when they all agree, else null (see `scales`). */
  scale: number | null;
  /** Distinct module scales, ascending. */
  scales: number[];
  fanInFanOut: boolean;
  /** Storage dtype of the source tensors ("mixed" when they differ, null when unknown). */
  dtype: SafetensorsDtype | "mixed" | null;
  /** Σ r·(in + out) over modules. */
  parameters: number;
}

export interface PeftAdapterLoad<F extends LoraFactor = Float32Array> {
  adapter: LoraAdapter<F>;
  config: PeftConfig;
  summary: AdapterSummary;
}

function fail(code: ConstructorParameters<typeof AdapterFormatError>[0], message: string, details: Record<string, unknown> = {}): never {
  throw new AdapterFormatError(code, message, details);
}

/**
 * Index of the first non-finite element, or −1.
 * Semantics: min { i : !isFinite(x[i]) } (−1 when all finite).
 * Fast path: Σ x[i]·0 is ±0 when every x[i] is finite and NaN as soon as one is NaN or ±Inf
 * (4 independent accumulators); only then is the index searched for.
 * Cost: one load + one multiply-add per value: as fast as a bare JS loop that reads every Uint32
 * of the same bytes (≈7 GB/s here; bench case 6 measures the bare loop). The loader uses it only where the
 * SIMD scan cannot run (`allFiniteStreamed` / `allFiniteInPlace` answer null) and to find the index.
 */
export function firstNonFinite(x: Float32Array): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = x.length & ~3;
  for (let i = 0; i < n; i += 4) {
    s0 += x[i] * 0;
    s1 += x[i + 1] * 0;
    s2 += x[i + 2] * 0;
    s3 += x[i + 3] * 0;
  }
  for (let i = n; i < x.length; i++) s0 += x[i] * 0;
  if (s0 + s1 + s2 + s3 === 0) return -1;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** A tensor as F32 (a copy when asked for and still aliasing the file), checked for NaN/Inf. */
function toCheckedF32(name: string, t: SafetensorsTensor, opts: LoadPeftAdapterOptions, widened: WidenedTensor | undefined): Float32Array {
  const copy = opts.copy ?? false;
  const { values, allFinite } = widened ?? tensorToFloat32Checked(t, opts.alloc);
  if (allFinite !== true) {
    const i = firstNonFinite(values);
    if (i >= 0) fail("non_finite_weight", `tensor "${name}" has a non-finite value (${values[i]}) at flat index ${i}`, { tensor: name, index: i });
  }
  return copy && t.dtype === "F32" && values.buffer === t.data.buffer ? values.slice() : values;
}

/** A 16-bit tensor kept as it is (a copy when asked for or not 2-aligned), checked for ±Inf/NaN. */
function toCheckedHalves(name: string, t: SafetensorsTensor & { dtype: HalfDtype }, opts: LoadPeftAdapterOptions): HalfFactor {
  const view = u16View(t.data);
  const factor = new HalfFactor(t.dtype, opts.copy && view.buffer === t.data.buffer ? view.slice() : view);
  const i = firstNonFiniteHalf(factor);
  if (i >= 0) {
    const value = factorValues(new HalfFactor(t.dtype, factor.bits.subarray(i, i + 1)))[0];
    fail("non_finite_weight", `tensor "${name}" has a non-finite value (${value}) at flat index ${i}`, { tensor: name, index: i });
  }
  return factor;
}

/**
 * Loads a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) into memory.
 *
 * Checks, each with its own error code: the config (see parsePeftConfig); every tensor is a
 * lora_A / lora_B weight (embedding LoRA → unsupported_target, lora_magnitude_vector →
 * unsupported_dora, lora biases → unsupported_feature, anything else → unexpected_tensor); one
 * adapter name only; every A has its B and vice versa; A is [r, in] and B is [out, r] with the
 * same r; r equals the config's r after rank_pattern; the module is matched by target_modules
 * (and not excluded / outside layers_to_transform); no embedding / lm_head module; no NaN/Inf.
 * An all-F16 file received by `allocateSafetensorsBytes` is widened to F32 in place (its bytes are
 * then used up: a second load of them throws), unless `copy` or `keepHalves` is asked for. With
 * `keepHalves`, F16/BF16 tensors stay 16-bit (`HalfFactor`) and the adapter is a `LoraAdapter<LoraFactor>`.
 */
export function readPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts: LoadPeftAdapterOptions & { keepHalves: true }): PeftAdapterLoad<LoraFactor>;
export function readPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts?: LoadPeftAdapterOptions & { keepHalves?: false }): PeftAdapterLoad;
export function readPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts?: LoadPeftAdapterOptions): PeftAdapterLoad<LoraFactor>;
export function readPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts: LoadPeftAdapterOptions = {}): PeftAdapterLoad<LoraFactor> {
  if (wasWidened(safetensorsBytes)) throw new Error("readPeftAdapter: these bytes were widened to F32 in place by an earlier load and no longer hold the file");
  const config = parsePeftConfig(configJson);
  const file = readSafetensors(safetensorsBytes, { maxHeaderBytes: opts.maxHeaderBytes });
  const resolve = moduleScaleResolver(config);
  const isTargeted = compileTargetMatcher(config);

  const pairs = new Map<string, { a?: [string, SafetensorsTensor]; b?: [string, SafetensorsTensor] }>();
  let adapterName: string | null | undefined;
  for (const [name, t] of file.tensors) {
    const key = parsePeftKey(name);
    switch (key.kind) {
      case "embedding":
        fail("unsupported_target", `tensor "${name}": LoRA on embedding module "${key.module}" is not supported (Linear targets only)`, { tensor: name, module: key.module });
      case "dora":
        fail("unsupported_dora", `tensor "${name}": DoRA magnitude vectors are not supported`, { tensor: name, module: key.module });
      case "lora_bias":
        fail("unsupported_feature", `tensor "${name}": LoRA biases (lora_bias) are not supported`, { tensor: name, module: key.module });
      case "other":
        fail(
          "unexpected_tensor",
          `tensor "${name}" is not a PEFT LoRA weight (expected "base_model.model.<module>.lora_A.weight" / ".lora_B.weight"); full weights such as modules_to_save copies are not supported`,
          { tensor: name },
        );
      case "lora": {
        if (adapterName === undefined) adapterName = key.adapterName;
        else if (adapterName !== key.adapterName) {
          fail("multiple_adapters", `tensor "${name}" belongs to adapter ${JSON.stringify(key.adapterName)} but the file also holds adapter ${JSON.stringify(adapterName)}; one adapter per file`, {
            tensor: name,
          });
        }
        const slot = pairs.get(key.module) ?? {};
        slot[key.part === "A" ? "a" : "b"] = [name, t];
        pairs.set(key.module, slot);
      }
    }
  }
  if (pairs.size === 0) fail("empty_adapter", "adapter_model.safetensors holds no LoRA weights");

  // After every check that needs no values: in place, in file order, before any tensor is read.
  // Views kept of these bytes (keepHalves) must outlive any later load: none may widen them in place then.
  if (opts.keepHalves && !opts.copy) forbidWidening(safetensorsBytes);
  const widened = opts.copy || opts.keepHalves ? null : widenF16InPlace(safetensorsBytes, file);
  const modules = new Map<string, LoraModule<LoraFactor>>();
  const dtypes = new Set<SafetensorsDtype>();
  for (const module of [...pairs.keys()].sort()) {
    const { a, b } = pairs.get(module)!;
    if (!b) fail("missing_lora_b", `module "${module}" has lora_A ("${a![0]}") but no lora_B`, { module });
    if (!a) fail("missing_lora_a", `module "${module}" has lora_B ("${b[0]}") but no lora_A`, { module });
    if (isEmbeddingOrHeadModule(module)) {
      fail("unsupported_target", `module "${module}" is an embedding or output head; only Linear projections inside the transformer blocks are supported`, { module });
    }
    const [aName, at] = a;
    const [bName, bt] = b;
    for (const [n, t] of [[aName, at], [bName, bt]] as const) {
      if (t.shape.length === 4) fail("unsupported_target", `tensor "${n}" has shape [${t.shape.join(", ")}]: Conv LoRA is not supported (Linear targets only)`, { tensor: n });
      if (t.shape.length !== 2) fail("shape_mismatch", `tensor "${n}" must be 2-D, got shape [${t.shape.join(", ")}]`, { tensor: n });
    }
    const [rA, inF] = at.shape;
    const [outF, rB] = bt.shape;
    if (rA !== rB) {
      fail("rank_mismatch", `module "${module}": lora_A is [${at.shape.join(", ")}] (rank ${rA}) but lora_B is [${bt.shape.join(", ")}] (rank ${rB})`, { module, rankA: rA, rankB: rB });
    }
    if (rA === 0 || inF === 0 || outF === 0) fail("shape_mismatch", `module "${module}" has an empty dimension: A [${at.shape.join(", ")}], B [${bt.shape.join(", ")}]`, { module });
    const s = resolve(module);
    if (s.rank !== rA) {
      const source = s.rankKey === null ? `r = ${config.r}` : `rank_pattern["${s.rankKey}"] = ${s.rank}`;
      fail("rank_mismatch", `module "${module}": weights have rank ${rA} but adapter_config.json gives ${source}`, { module, rank: rA, configRank: s.rank, patternKey: s.rankKey });
    }
    if (!isTargeted(module)) {
      fail("module_not_targeted", `module "${module}" has weights but is not matched by target_modules ${JSON.stringify(config.targetModules)}${config.excludeModules ? ` / exclude_modules ${JSON.stringify(config.excludeModules)}` : ""}${config.layersToTransform ? ` / layers_to_transform ${JSON.stringify(config.layersToTransform)}` : ""}`, { module });
    }
    const factor = (n: string, t: SafetensorsTensor): LoraFactor =>
      opts.keepHalves && isHalf(t) ? toCheckedHalves(n, t, opts) : toCheckedF32(n, t, opts, widened?.get(t));
    const af = factor(aName, at);
    const bf = factor(bName, bt);
    dtypes.add(at.dtype).add(bt.dtype);
    modules.set(module, { module, rank: rA, inFeatures: inF, outFeatures: outF, scale: s.scale, a: af, b: bf });
  }
  const adapter: LoraAdapter<LoraFactor> = { baseModel: config.baseModel, fanInFanOut: config.fanInFanOut, modules };
  const dtype = dtypes.size === 1 ? [...dtypes][0] : "mixed";
  return { adapter, config, summary: describeAdapter(adapter, config, dtype) };
}

const isHalf = (t: SafetensorsTensor): t is SafetensorsTensor & { dtype: HalfDtype } => t.dtype === "F16" || t.dtype === "BF16";

/** `readPeftAdapter(...).adapter`. */
export function loadPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts: LoadPeftAdapterOptions & { keepHalves: true }): LoraAdapter<LoraFactor>;
export function loadPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts?: LoadPeftAdapterOptions & { keepHalves?: false }): LoraAdapter;
export function loadPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts?: LoadPeftAdapterOptions): LoraAdapter<LoraFactor>;
export function loadPeftAdapter(configJson: unknown, safetensorsBytes: Uint8Array, opts: LoadPeftAdapterOptions = {}): LoraAdapter<LoraFactor> {
  return readPeftAdapter(configJson, safetensorsBytes, opts).adapter;
}

/** Registry summary of an adapter: ranks, alpha, scale(s), targets, dtype, parameter count. */
export function describeAdapter(
  adapter: LoraAdapter<LoraFactor>,
  config: Pick<PeftConfig, "loraAlpha" | "useRslora"> | null = null,
  dtype: AdapterSummary["dtype"] = null,
): AdapterSummary {
  const mods = [...adapter.modules.values()];
  const ranks = [...new Set(mods.map((m) => m.rank))].sort((x, y) => x - y);
  const scales = [...new Set(mods.map((m) => m.scale))].sort((x, y) => x - y);
  const targets = mods.map((m) => m.module).sort();
  return {
    baseModel: adapter.baseModel,
    targets,
    targetNames: [...new Set(targets.map((t) => t.slice(t.lastIndexOf(".") + 1)))].sort(),
    rank: ranks.length ? ranks[ranks.length - 1] : 0,
    ranks,
    alpha: config ? config.loraAlpha : null,
    useRslora: config ? config.useRslora : false,
    scale: scales.length === 1 ? scales[0] : null,
    scales,
    fanInFanOut: adapter.fanInFanOut,
    dtype,
    parameters: mods.reduce((p, m) => p + m.rank * (m.inFeatures + m.outFeatures), 0),
  };
}
