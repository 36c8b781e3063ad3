/**
 * Imports a third-party decoder ONNX export (described by an ExportFamily) into a runner model:
 * weights move to external data (keeping their dtype: fp32 or fp16), every plain MatMul whose
 * weight is a target initializer gets per-row and shared LoRA inputs
 * (y = x·W + (x·Aᵗ)·Bᵗ + ((x·Ac) ⊙ Mk)·Bc, see lora-paths.ts; in fp32 even when W is fp16: x is
 * Cast up, the LoRA term Cast down once and added), weights inside fused ops are listed as
 * "merge-only" targets (a merged session applies their ΔW), and an fp16 graph gets an fp32
 * boundary (float32Boundary) so the runtime feeds and reads float32 only.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ModelManifest, TargetModule } from "#core/manifest/model-manifest";
import { DataType, decodeModel, encodeModel, externalLocation, externalTensor, float32Boundary, tensorElements, toNumber, valueInfo, type ModelProto, type NodeProto, type TensorProto } from "../onnx/index.js";
import { EXPORT_FAMILIES, familyForGenaiType, type ExportFamily } from "./export-families.js";
import type { GraphSpec, TargetBinding } from "../model/graph-spec.js";
import { writeModelDir } from "../model/model-dir.js";
import { readTokenizerFiles } from "./tokenizer-files.js";
import { importedTokenizer } from "./tokenizer-manifest.js";

export interface ImportOnnxOptions {
  /** Export family in EXPORT_FAMILIES (default: from genai_config.json `model.type`). */
  family?: string;
  /** Model id (default: the source directory's name). */
  id?: string;
  maxRank?: number;
  /** Called as external weight files are read: bytes so far, bytes in all. */
  onProgress?: (done: number, total: number) => void;
}

const WEIGHTS_FILE = "weights.bin";
const GRAPH_FILE = "model.onnx";
const ALIGN = 64;

async function readJsonFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new Error(`ONNX import: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`ONNX import: ${file} is not valid JSON: ${(err as Error).message}`);
  }
}

function moduleFor(rules: ExportFamily["weights"], initializer: string, node: NodeProto): string | null {
  for (const rule of rules) {
    const subject = rule.on === "initializer" ? initializer : (node.name ?? "");
    const re = new RegExp(rule.match);
    if (re.test(subject)) return subject.replace(re, rule.module);
  }
  return null;
}

const BYTES_PER_ELEMENT: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.FLOAT16]: 2, [DataType.BFLOAT16]: 2, [DataType.INT64]: 8, [DataType.INT32]: 4, [DataType.INT8]: 1, [DataType.UINT8]: 1, [DataType.BOOL]: 1, [DataType.DOUBLE]: 8 };

/** The family to read srcDir with: the option, else genai_config.json `model.type`. */
export function detectExportFamily(genai: Record<string, unknown> | null, family?: string): string {
  if (family) {
    if (!EXPORT_FAMILIES[family]) throw new Error(`ONNX import: unknown export family "${family}" (known: ${Object.keys(EXPORT_FAMILIES).join(", ")})`);
    return family;
  }
  const type = String(((genai?.model ?? {}) as Record<string, unknown>).type ?? "");
  const found = familyForGenaiType(type);
  if (!found) {
    const known = Object.values(EXPORT_FAMILIES).flatMap((f) => f.genaiTypes);
    throw new Error(`ONNX import: genai_config.json model.type "${type}" is not a supported family (supported: ${known.join(", ")})`);
  }
  return found;
}

/**
 * Moves every initializer with data (inline floats, or external data in srcDir) into one
 * 64-byte-aligned blob, keeping dtypes; refuses external data that is missing or truncated.
 */
async function gatherWeights(model: ModelProto, srcDir: string, onProgress?: (done: number, total: number) => void): Promise<Uint8Array> {
  const files = new Map<string, Uint8Array>();
  let total = 0;
  let done = 0;
  if (onProgress) {
    const names = new Set((model.graph!.initializer ?? []).map((t) => externalLocation(t)?.location).filter((n): n is string => !!n && !n.includes("..")));
    for (const name of names) total += await fs.stat(path.join(srcDir, name)).then((s) => s.size, () => 0);
  }
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let size = 0;
  const initializers = model.graph!.initializer ?? [];
  for (let i = 0; i < initializers.length; i++) {
    const t = initializers[i];
    const loc = externalLocation(t);
    let bytes: Uint8Array;
    if (loc) {
      if (loc.location.includes("..") || path.isAbsolute(loc.location)) throw new Error(`ONNX import: initializer ${t.name} refers to external file ${loc.location} outside the export directory`);
      let file = files.get(loc.location);
      if (!file) {
        try {
          file = new Uint8Array(await fs.readFile(path.join(srcDir, loc.location)));
        } catch (err) {
          throw new Error(`ONNX import: external data file ${path.join(srcDir, loc.location)} is missing (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        }
        files.set(loc.location, file);
        done += file.byteLength;
        onProgress?.(done, Math.max(total, done));
      }
      const expected = tensorElements(t) * (BYTES_PER_ELEMENT[t.dataType ?? 0] ?? 0);
      const length = loc.length ?? expected;
      if (expected && length !== expected) throw new Error(`ONNX import: initializer ${t.name} has ${length} bytes of external data, its shape needs ${expected}`);
      if (loc.offset + length > file.byteLength) throw new Error(`ONNX import: external data ${loc.location} is truncated: ${file.byteLength} bytes, initializer ${t.name} needs bytes ${loc.offset}–${loc.offset + length}`);
      bytes = file.subarray(loc.offset, loc.offset + length);
    } else if ((t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16) && t.rawData && t.rawData.length) {
      bytes = t.rawData;
    } else if (t.dataType === DataType.FLOAT && t.floatData?.length) {
      bytes = new Uint8Array(Float32Array.from(t.floatData).buffer);
    } else {
      continue;
    }
    const offset = Math.ceil(size / ALIGN) * ALIGN;
    chunks.push({ offset, bytes });
    size = offset + bytes.length;
    initializers[i] = externalTensor(t.name!, t.dataType!, (t.dims ?? []).map(toNumber), WEIGHTS_FILE, offset, bytes.length);
  }
  const weights = new Uint8Array(size);
  for (const c of chunks) weights.set(c.bytes, c.offset);
  return weights;
}

/** The LoRA nodes of one unmerged target (fp32 LoRA math; Casts around it when the weight is fp16). */
/** A float32 0 the LoRA mask selects against (added to the graph when a target is unmerged). */
const LORA_ZERO = "loraedge.lora_zero";

function loraNodes(module: string, x: string, base: string, y: string, fp16: boolean): NodeProto[] {
  const xf = fp16 ? `${module}/x_fp32` : x;
  const nodes: NodeProto[] = [];
  if (fp16) nodes.push({ name: `${module}/lora_CastIn`, opType: "Cast", input: [x], output: [xf], attribute: [{ name: "to", type: 2, i: DataType.FLOAT }] });
  nodes.push(
    { name: `${module}/lora_A`, opType: "MatMul", input: [xf, `${module}.lora_at`], output: [`${module}/xa`] }, // [b, s, R]
    { name: `${module}/lora_B`, opType: "MatMul", input: [`${module}/xa`, `${module}.lora_bt`], output: [`${module}/delta`] }, // [b, s, out]
    { name: `${module}/lora_Ac`, opType: "MatMul", input: [xf, `${module}.lora_ac`], output: [`${module}/xc`] }, // [b, s, Rc]
    // Selection, not multiplication: another row's ±∞ column must not become this row's NaN (0 · ∞).
    { name: `${module}/lora_mask_bool`, opType: "Cast", input: [`${module}.lora_mask`], output: [`${module}/mask_bool`], attribute: [{ name: "to", type: 2, i: DataType.BOOL }] }, // [b, 1, Rc]
    { name: `${module}/lora_mask`, opType: "Where", input: [`${module}/mask_bool`, `${module}/xc`, LORA_ZERO], output: [`${module}/own`] }, // [b, s, Rc]
    { name: `${module}/lora_Bc`, opType: "MatMul", input: [`${module}/own`, `${module}.lora_bc`], output: [`${module}/shared`] }, // [b, s, out]
  );
  if (fp16) {
    nodes.push(
      { name: `${module}/lora_Sum`, opType: "Add", input: [`${module}/delta`, `${module}/shared`], output: [`${module}/lora`] }, // [b, s, out] fp32
      { name: `${module}/lora_CastOut`, opType: "Cast", input: [`${module}/lora`], output: [`${module}/lora_fp16`], attribute: [{ name: "to", type: 2, i: DataType.FLOAT16 }] },
      { name: `${module}/Add`, opType: "Add", input: [base, `${module}/lora_fp16`], output: [y] },
    );
  } else {
    nodes.push(
      { name: `${module}/Add`, opType: "Add", input: [base, `${module}/delta`], output: [`${y}/with_delta`] },
      { name: `${module}/AddShared`, opType: "Add", input: [`${y}/with_delta`, `${module}/shared`], output: [y] },
    );
  }
  return nodes;
}

/** Drops nodes none of whose outputs reach a graph output (after a rewiring). */
function pruneDeadNodes(graph: NonNullable<ModelProto["graph"]>): void {
  const live = new Set((graph.output ?? []).map((o) => o.name));
  const kept: NodeProto[] = [];
  for (const node of [...(graph.node ?? [])].reverse()) {
    if (!(node.output ?? []).some((o) => o && live.has(o))) continue;
    kept.push(node);
    for (const i of node.input ?? []) if (i) live.add(i);
  }
  graph.node = kept.reverse();
  graph.input = (graph.input ?? []).filter((i) => live.has(i.name));
  graph.initializer = (graph.initializer ?? []).filter((t) => live.has(t.name!));
}

/** ExportFamily.attentionBias: the attention ops take a bias input fed by the runtime; the export's mask subgraph is pruned. */
function replaceMaskByBias(model: ModelProto, rule: NonNullable<ExportFamily["attentionBias"]>, biasName: string, familyName: string): void {
  const graph = model.graph!;
  const ops = (graph.node ?? []).filter((n) => n.opType === rule.opType);
  if (ops.length === 0) {
    const attention = (graph.node ?? []).find((n) => /Attention$/.test(n.opType));
    throw new Error(`ONNX import: the ${familyName} family expects ${rule.opType} attention nodes${attention ? `, the graph uses ${attention.opType} (not supported)` : ""}`);
  }
  const maskInfo = graph.input!.find((i) => i.name === rule.replaces)!;
  const batchDim = maskInfo.type?.tensorType?.shape?.dim?.[0]?.dimParam ?? "batch";
  // The bias has the dtype of the attention's query (fp16 exports: Cast at the fp32 boundary).
  const queryType = graph.input!.find((i) => /past_key_values/.test(i.name))?.type?.tensorType?.elemType ?? DataType.FLOAT;
  for (const n of ops) {
    const inputs = [...(n.input ?? [])];
    while (inputs.length <= rule.index) inputs.push("");
    inputs[rule.index] = biasName;
    n.input = inputs;
  }
  graph.input!.push(valueInfo(biasName, queryType, [batchDim, 1, "sequence_length", "total_sequence_length"])); // [b, 1, S, T]
  pruneDeadNodes(graph);
}

export async function importOnnxExport(srcDir: string, outDir: string, opts: ImportOnnxOptions = {}): Promise<ModelManifest> {
  const genaiFile = path.join(srcDir, "genai_config.json");
  const genai = await readJsonFile(genaiFile).catch((err: Error) => {
    if (opts.family && err.message.includes("cannot read")) return null;
    throw err;
  });
  const familyName = detectExportFamily(genai, opts.family);
  const family = EXPORT_FAMILIES[familyName];
  const genaiModel = (genai?.model ?? {}) as Record<string, unknown>;
  const decoder = (genaiModel.decoder ?? {}) as Record<string, unknown>;
  const graphFile = typeof decoder.filename === "string" && decoder.filename ? decoder.filename : family.graphFile;
  let graphBytes: Uint8Array;
  try {
    graphBytes = new Uint8Array(await fs.readFile(path.join(srcDir, graphFile)));
  } catch (err) {
    throw new Error(`ONNX import: cannot read the graph ${path.join(srcDir, graphFile)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let model: ModelProto;
  try {
    model = decodeModel(graphBytes);
  } catch (err) {
    throw new Error(`ONNX import: ${graphFile} is not an ONNX model: ${(err as Error).message}`);
  }
  const graph = model.graph;
  if (!graph?.node?.length || !graph.initializer) throw new Error(`ONNX import: ${graphFile} has no graph`);
  const quantized = graph.node.find((n) => n.opType === "MatMulNBits" || n.opType === "MatMulInteger" || n.opType === "QLinearMatMul");
  if (quantized) throw new Error(`ONNX import: ${graphFile} is quantized (${quantized.opType} node ${quantized.name}); export it in fp32 or fp16`);
  const requiredInputs = [family.io.inputIds.name, family.attentionBias?.replaces ?? family.io.mask.name, ...(family.io.positionIds ? [family.io.positionIds.name] : [])];
  for (const name of requiredInputs) {
    if (!graph.input?.some((i) => i.name === name)) throw new Error(`ONNX import: ${graphFile} has no input "${name}" that the ${familyName} family expects`);
  }
  if (!graph.output?.some((o) => o.name === family.io.logits)) throw new Error(`ONNX import: ${graphFile} has no output "${family.io.logits}" that the ${familyName} family expects`);
  for (const rule of family.unsupportedWeights ?? []) {
    const hit = graph.initializer.find((t) => new RegExp(rule.match).test(t.name ?? ""));
    if (hit) throw new Error(`ONNX import: ${graphFile} has a ${rule.reason}: ${hit.name}; re-export without it (separate q/k/v MatMuls) to serve adapters`);
  }
  if (family.attentionBias) replaceMaskByBias(model, family.attentionBias, family.io.mask.name, familyName);
  const nodes = graph.node!;
  const weights = await gatherWeights(model, srcDir, opts.onProgress);
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));

  const uses = new Map<string, number>();
  for (const n of nodes) for (const i of n.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);

  // Targets.
  const targets: TargetModule[] = [];
  const bindings: TargetBinding[] = [];
  const newNodes: NodeProto[] = [];
  const weightTypes = new Set<number>();
  const batchDim = graph.input?.find((i) => i.name === family.io.inputIds.name)?.type?.tensorType?.shape?.dim?.[0]?.dimParam ?? "batch";
  for (const node of nodes) {
    newNodes.push(node);
    const domain = node.domain ?? "";
    let weightIndex: number | null = null;
    let mode: "unmerged" | "merge-only" = "unmerged";
    if (node.opType === "MatMul" && domain === "") weightIndex = 1;
    else if (node.opType in family.fusedWeightInputs) {
      weightIndex = family.fusedWeightInputs[node.opType];
      mode = "merge-only";
    }
    if (weightIndex === null) continue;
    const weightName = node.input?.[weightIndex];
    const init: TensorProto | undefined = weightName ? inits.get(weightName) : undefined;
    if (!weightName || !init || (init.dims ?? []).length !== 2) continue;
    if (init.dataType !== DataType.FLOAT && init.dataType !== DataType.FLOAT16) continue;
    const module = moduleFor(family.weights, weightName, node);
    if (!module) continue;
    if ((uses.get(weightName) ?? 0) > 1) throw new Error(`ONNX import: weight ${weightName} (${module}) is shared by several nodes; a per-module LoRA cannot target it`);
    if (targets.some((t) => t.module === module)) throw new Error(`ONNX import: two weights map to module ${module}`);
    weightTypes.add(init.dataType);
    const [inF, outF] = (init.dims ?? []).map(toNumber); // MatMul / Attention weights are [in, out]
    targets.push({ module, in: inF, out: outF, mode, fanInFanOut: family.fanInFanOut });
    const binding: TargetBinding = { module, weight: weightName, layout: "in_out" };
    if (mode === "unmerged") {
      const x = node.input![0];
      const y = node.output![0];
      const at = `${module}.lora_at`;
      const bt = `${module}.lora_bt`;
      const ac = `${module}.lora_ac`;
      const bc = `${module}.lora_bc`;
      const mask = `${module}.lora_mask`;
      graph.input!.push(valueInfo(at, DataType.FLOAT, [batchDim, inF, `R.${module}`])); // [batch, in, R]
      graph.input!.push(valueInfo(bt, DataType.FLOAT, [batchDim, `R.${module}`, outF])); // [batch, R, out]
      graph.input!.push(valueInfo(ac, DataType.FLOAT, [inF, `Rc.${module}`])); // [in, Rc]
      graph.input!.push(valueInfo(bc, DataType.FLOAT, [`Rc.${module}`, outF])); // [Rc, out]
      graph.input!.push(valueInfo(mask, DataType.FLOAT, [batchDim, 1, `Rc.${module}`])); // [batch, 1, Rc]
      node.output = [`${y}/base`];
      newNodes.push(...loraNodes(module, x, `${y}/base`, y, init.dataType === DataType.FLOAT16));
      binding.at = at;
      binding.bt = bt;
      binding.ac = ac;
      binding.bc = bc;
      binding.mask = mask;
    }
    bindings.push(binding);
  }
  graph.node = newNodes;
  if (bindings.some((b) => b.mask)) graph.initializer!.push({ name: LORA_ZERO, dims: [], dataType: DataType.FLOAT, rawData: new Uint8Array(4) });
  if (targets.length === 0) throw new Error(`ONNX import: no weight of ${graphFile} matched the ${familyName} rules`);
  if (weightTypes.size > 1) throw new Error(`ONNX import: ${graphFile} mixes fp32 and fp16 projection weights`);
  const fp16 = weightTypes.has(DataType.FLOAT16);
  float32Boundary(model);

  // Sizes.
  const logitsInfo = graph.output?.find((o) => o.name === family.io.logits);
  const vocab = toNumber(logitsInfo?.type?.tensorType?.shape?.dim?.[2]?.dimValue) || Number(genaiModel.vocab_size);
  const kvIo = family.io.kv;
  const pastPattern = kvIo.layout === "stacked" ? kvIo.past : kvIo.pastKey;
  const pastInfo = graph.input?.find((i) => i.name === pastPattern.replace("{i}", "0"))?.type?.tensorType?.shape?.dim ?? [];
  const kvDims = pastInfo.slice(kvIo.layout === "stacked" ? 2 : 1).map((d) => toNumber(d.dimValue));
  const kvHeads = kvDims[0] || Number(decoder.num_key_value_heads);
  const headDim = kvDims[2] || Number(decoder.head_size);
  let layers = 0;
  while (graph.input?.some((i) => i.name === pastPattern.replace("{i}", String(layers)))) layers++;
  const numHeads = Number(decoder.num_attention_heads ?? kvHeads);
  const intermediate = targets.find((t) => t.module === family.intermediateModule)?.out;
  const hidden = Number(decoder.hidden_size) || numHeads * headDim;
  if (!vocab || !kvHeads || !headDim || !layers || !intermediate) throw new Error("ONNX import: cannot determine the model sizes from the graph and genai_config.json");
  let parameters = 0;
  for (const t of graph.initializer) if (t.name !== LORA_ZERO && (t.dataType === DataType.FLOAT || t.dataType === DataType.FLOAT16)) parameters += tensorElements(t);

  const spec: GraphSpec = {
    format: 1,
    graphFile: GRAPH_FILE,
    weightsFile: WEIGHTS_FILE,
    ...family.io,
    kv: { ...kvIo, layers, heads: kvHeads, headDim },
    targets: bindings,
  } as GraphSpec;
  const { tokenizerJson, tokenizerConfig, generationConfig } = await readTokenizerFiles(srcDir, "ONNX import");
  const id = opts.id ?? path.basename(path.resolve(srcDir));
  const manifest: ModelManifest = {
    id,
    architecture: family.architecture,
    dtype: fp16 ? "float16" : "float32",
    vocabSize: vocab,
    contextLength: Number(genaiModel.context_length ?? 0) || 2048,
    hiddenSize: hidden,
    numLayers: layers,
    numHeads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: intermediate,
    parameters,
    tokenizer: importedTokenizer({ what: "ONNX import", configName: "genai_config.json", bos: genaiModel.bos_token_id, eos: genaiModel.eos_token_id, generationConfig, tokenizerJson, vocabSize: vocab }),
    maxRank: opts.maxRank ?? 64,
    targets,
    source: { importer: "onnx-export", family: familyName, source: path.basename(path.resolve(srcDir)), producer: model.producerName ?? null },
  };
  await writeModelDir(outDir, { manifest, spec, graph: encodeModel(model), weights, tokenizerJson, tokenizerConfig });
  return manifest;
}
