/**
 * Imports a third-party decoder ONNX export (described by an ExportFamily) into a runner model:
 * weights move to external data, every plain MatMul whose weight is a target initializer gets
 * per-row and shared LoRA inputs (y = x·W + (x·Aᵗ)·Bᵗ + ((x·Ac) ⊙ Mk)·Bc, see lora-paths.ts), and weights inside fused ops are listed as
 * "merge-only" targets (a merged session applies their ΔW).
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ModelManifest, TargetModule } from "#core/manifest/model-manifest";
import { attribute, DataType, decodeModel, encodeModel, externalTensor, floatTensor, toNumber, valueInfo, type NodeProto, type TensorProto } from "../onnx/index.js";
import { EXPORT_FAMILIES, type ExportFamily } from "./export-families.js";
import type { GraphSpec, TargetBinding } from "../model/graph-spec.js";
import { writeModelDir } from "../model/model-dir.js";

export interface ImportOnnxOptions {
  /** Export family in EXPORT_FAMILIES (default "genai-gpt2"). */
  family?: string;
  /** Model id (default: the source directory's name). */
  id?: string;
  maxRank?: number;
}

const WEIGHTS_FILE = "weights.bin";
const GRAPH_FILE = "model.onnx";
const ALIGN = 64;

async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(file, "utf8")) as Record<string, unknown>;
}

/** float32 values of an inline initializer. */
function floatValues(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length) return new Float32Array(t.rawData.slice().buffer);
  return Float32Array.from(t.floatData ?? []);
}

function moduleFor(rules: ExportFamily["weights"], initializer: string, node: NodeProto): string | null {
  for (const rule of rules) {
    const subject = rule.on === "initializer" ? initializer : (node.name ?? "");
    const re = new RegExp(rule.match);
    if (re.test(subject)) return subject.replace(re, rule.module);
  }
  return null;
}

export async function importOnnxExport(srcDir: string, outDir: string, opts: ImportOnnxOptions = {}): Promise<void> {
  const familyName = opts.family ?? "genai-gpt2";
  const family = EXPORT_FAMILIES[familyName];
  if (!family) throw new Error(`ONNX import: unknown export family "${familyName}" (known: ${Object.keys(EXPORT_FAMILIES).join(", ")})`);
  const genai = await readJson(path.join(srcDir, "genai_config.json")).catch(() => null);
  const model = decodeModel(new Uint8Array(await fs.readFile(path.join(srcDir, family.graphFile))));
  const graph = model.graph;
  if (!graph?.node || !graph.initializer) throw new Error(`ONNX import: ${family.graphFile} has no graph`);
  const nodes = graph.node;
  const inits = new Map(graph.initializer.map((t) => [t.name!, t]));

  // Weights: every float32 initializer moves to the external blob.
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let size = 0;
  graph.initializer = graph.initializer.map((t) => {
    if (t.dataType !== DataType.FLOAT || t.dataLocation === 1) return t;
    const values = floatValues(t);
    if (values.length === 0) return t;
    const offset = Math.ceil(size / ALIGN) * ALIGN;
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    chunks.push({ offset, bytes });
    size = offset + bytes.length;
    const ext = externalTensor(t.name!, DataType.FLOAT, (t.dims ?? []).map(toNumber), WEIGHTS_FILE, offset, bytes.length);
    inits.set(t.name!, ext);
    return ext;
  });
  const weights = new Uint8Array(size);
  for (const c of chunks) weights.set(c.bytes, c.offset);

  const uses = new Map<string, number>();
  for (const n of nodes) for (const i of n.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);

  // Targets.
  const LORA_ZERO = "loraedge.lora_zero";
  const targets: TargetModule[] = [];
  const bindings: TargetBinding[] = [];
  const newNodes: NodeProto[] = [];
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
    const init = weightName ? inits.get(weightName) : undefined;
    if (!weightName || !init || init.dataType !== DataType.FLOAT || (init.dims ?? []).length !== 2) continue;
    const module = moduleFor(family.weights, weightName, node);
    if (!module) continue;
    if ((uses.get(weightName) ?? 0) > 1) throw new Error(`ONNX import: weight ${weightName} (${module}) is shared by several nodes; a per-module LoRA cannot target it`);
    if (targets.some((t) => t.module === module)) throw new Error(`ONNX import: two weights map to module ${module}`);
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
      newNodes.push(
        { name: `${module}/lora_A`, opType: "MatMul", input: [x, at], output: [`${module}/xa`] }, // [b, s, R]
        { name: `${module}/lora_B`, opType: "MatMul", input: [`${module}/xa`, bt], output: [`${module}/delta`] }, // [b, s, out]
        { name: `${module}/lora_Ac`, opType: "MatMul", input: [x, ac], output: [`${module}/xc`] }, // [b, s, Rc]
        // Selection, not multiplication: another row's ±∞ column must not become this row's NaN (0 · ∞).
        { name: `${module}/lora_mask_bool`, opType: "Cast", input: [mask], output: [`${module}/mask_bool`], attribute: [attribute("to", DataType.BOOL)] }, // [b, 1, Rc]
        { name: `${module}/lora_mask`, opType: "Where", input: [`${module}/mask_bool`, `${module}/xc`, LORA_ZERO], output: [`${module}/own`] }, // [b, s, Rc]
        { name: `${module}/lora_Bc`, opType: "MatMul", input: [`${module}/own`, bc], output: [`${module}/shared`] }, // [b, s, out]
        { name: `${module}/Add`, opType: "Add", input: [`${y}/base`, `${module}/delta`], output: [`${y}/with_delta`] },
        { name: `${module}/AddShared`, opType: "Add", input: [`${y}/with_delta`, `${module}/shared`], output: [y] },
      );
      binding.at = at;
      binding.bt = bt;
      binding.ac = ac;
      binding.bc = bc;
      binding.mask = mask;
    }
    bindings.push(binding);
  }
  graph.node = newNodes;
  if (bindings.some((b) => b.mask)) graph.initializer.push(floatTensor(LORA_ZERO, [], [0]));
  if (targets.length === 0) throw new Error(`ONNX import: no weight of ${family.graphFile} matched the ${familyName} rules`);

  // Sizes.
  const genaiModel = (genai?.model ?? {}) as Record<string, unknown>;
  const decoder = (genaiModel.decoder ?? {}) as Record<string, number>;
  const logitsInfo = graph.output?.find((o) => o.name === family.io.logits);
  const vocab = toNumber(logitsInfo?.type?.tensorType?.shape?.dim?.[2]?.dimValue) || Number(genaiModel.vocab_size);
  const pastInfo = graph.input?.find((i) => i.name === (family.io.kv.layout === "stacked" ? family.io.kv.past : family.io.kv.pastKey).replace("{i}", "0"))?.type?.tensorType?.shape?.dim ?? [];
  const kvDims = pastInfo.slice(family.io.kv.layout === "stacked" ? 2 : 1).map((d) => toNumber(d.dimValue));
  const kvHeads = kvDims[0] || decoder.num_key_value_heads;
  const headDim = kvDims[2] || decoder.head_size;
  let layers = 0;
  while (graph.input?.some((i) => i.name === (family.io.kv.layout === "stacked" ? family.io.kv.past : family.io.kv.pastKey).replace("{i}", String(layers)))) layers++;
  const numHeads = Number(decoder.num_attention_heads ?? kvHeads);
  const intermediate = targets.find((t) => t.module === family.intermediateModule)?.out;
  const firstTarget = targets[0];
  const hidden = numHeads * headDim;
  if (!vocab || !kvHeads || !headDim || !layers || !intermediate || !firstTarget) throw new Error("ONNX import: cannot determine the model sizes from the graph and genai_config.json");
  let parameters = 0;
  for (const t of graph.initializer) if (t.dataType === DataType.FLOAT) parameters += (t.dims ?? []).map(toNumber).reduce((a, b) => a * b, 1);

  const spec: GraphSpec = {
    format: 1,
    graphFile: GRAPH_FILE,
    weightsFile: WEIGHTS_FILE,
    ...family.io,
    kv: { ...family.io.kv, layers, heads: kvHeads, headDim },
    targets: bindings,
  } as GraphSpec;
  const tokenizerJson = await readJson(path.join(srcDir, "tokenizer.json"));
  const tokenizerConfig = await readJson(path.join(srcDir, "tokenizer_config.json")).catch(() => ({}));
  const id = opts.id ?? path.basename(path.resolve(srcDir));
  const manifest: ModelManifest = {
    id,
    architecture: family.architecture,
    dtype: "float32",
    vocabSize: vocab,
    contextLength: Number(genaiModel.context_length ?? 0) || 2048,
    hiddenSize: hidden,
    numLayers: layers,
    numHeads,
    numKvHeads: kvHeads,
    headDim,
    intermediateSize: intermediate,
    parameters,
    tokenizer: {
      kind: "hf",
      bosId: typeof genaiModel.bos_token_id === "number" ? genaiModel.bos_token_id : null,
      eosId: typeof genaiModel.eos_token_id === "number" ? genaiModel.eos_token_id : null,
    },
    maxRank: opts.maxRank ?? 64,
    targets,
    source: { importer: "onnx-export", family: familyName, source: path.basename(path.resolve(srcDir)), producer: model.producerName ?? null },
  };
  await writeModelDir(outDir, { manifest, spec, graph: encodeModel(model), weights, tokenizerJson, tokenizerConfig });
}
