/**
 * Float16 graphs: values of FLOAT16 initializers, the fp32 boundary the runtime talks to, and
 * the up-cast of a whole fp16 graph to fp32 (the CPU policy "upcast", see model/README.md).
 */
import { f16ToF32 } from "#core/dtype/index";
import { DataType, toNumber, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from "./onnx-proto.js";

const ALIGN = 64;

/** Bytes of an external initializer: `{location, offset, length}` from its externalData entries. */
export function externalLocation(t: TensorProto): { location: string; offset: number; length: number | null } | null {
  if (t.dataLocation !== 1) return null;
  const entry = Object.fromEntries((t.externalData ?? []).map((e) => [e.key, e.value]));
  if (typeof entry.location !== "string") return null;
  return { location: entry.location, offset: Number(entry.offset ?? 0), length: entry.length === undefined ? null : Number(entry.length) };
}

/** Element count of an initializer. */
export function tensorElements(t: TensorProto): number {
  return (t.dims ?? []).map(toNumber).reduce((a, b) => a * b, 1);
}

/** The fp16 bits of an inline FLOAT16 tensor (raw_data, or int32_data holding one value each). */
export function inlineFloat16Bits(t: TensorProto): Uint16Array {
  if (t.rawData && t.rawData.length) return new Uint16Array(t.rawData.slice().buffer);
  return Uint16Array.from(t.int32Data ?? []);
}

function isFloat16(info: ValueInfoProto): boolean {
  return info.type?.tensorType?.elemType === DataType.FLOAT16;
}

/**
 * Gives a float16 graph a float32 boundary: each FLOAT16 graph input becomes FLOAT and is Cast to
 * fp16 once inside; each FLOAT16 graph output is produced in fp16 under an internal name and Cast
 * to FLOAT under its own name. Names are unchanged, so callers feed and read float32 only.
 *
 * Semantics: run(boundary(g))(x) = f32(run(g)(f16(x))) for every input x.
 * Cost: one Cast per boundary tensor per step (KV cache in and out, logits), no weight copies.
 */
export function float32Boundary(model: ModelProto): void {
  const graph = model.graph;
  if (!graph) throw new Error("float32Boundary: model has no graph");
  const nodes = graph.node ?? [];
  const renameInputs = (from: string, to: string) => {
    for (const n of nodes) n.input = (n.input ?? []).map((i) => (i === from ? to : i));
  };
  const pre: NodeProto[] = [];
  for (const input of graph.input ?? []) {
    if (!isFloat16(input)) continue;
    const inner = `${input.name}/fp16`;
    renameInputs(input.name, inner);
    pre.push({ name: `${input.name}/CastToFp16`, opType: "Cast", input: [input.name], output: [inner], attribute: [{ name: "to", type: 2, i: DataType.FLOAT16 }] });
    input.type!.tensorType!.elemType = DataType.FLOAT;
  }
  const post: NodeProto[] = [];
  for (const output of graph.output ?? []) {
    if (!isFloat16(output)) continue;
    const inner = `${output.name}/fp16`;
    for (const n of nodes) n.output = (n.output ?? []).map((o) => (o === output.name ? inner : o));
    renameInputs(output.name, inner);
    post.push({ name: `${output.name}/CastToFp32`, opType: "Cast", input: [inner], output: [output.name], attribute: [{ name: "to", type: 2, i: DataType.FLOAT }] });
    output.type!.tensorType!.elemType = DataType.FLOAT;
  }
  graph.node = [...pre, ...nodes, ...post];
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => !(graph.input ?? []).some((i) => i.name === v.name) && !(graph.output ?? []).some((o) => o.name === v.name));
}

function upcastTensorInline(t: TensorProto): void {
  if (t.dataType !== DataType.FLOAT16 || t.dataLocation === 1) return;
  const f32 = f16ToF32(inlineFloat16Bits(t));
  t.dataType = DataType.FLOAT;
  t.rawData = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  delete t.int32Data;
}

function upcastAttributes(attrs: AttributeProto[] | undefined, opType: string): void {
  for (const a of attrs ?? []) {
    if (a.t) upcastTensorInline(a.t);
    for (const t of (a as { tensors?: TensorProto[] }).tensors ?? []) upcastTensorInline(t);
    if (a.g) upcastGraphTypes(a.g);
    if (opType === "Cast" && a.name === "to" && toNumber(a.i) === DataType.FLOAT16) a.i = DataType.FLOAT;
  }
}

function upcastGraphTypes(graph: GraphProto): void {
  for (const info of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) {
    if (isFloat16(info)) info.type!.tensorType!.elemType = DataType.FLOAT;
  }
  for (const n of graph.node ?? []) upcastAttributes(n.attribute, n.opType);
  for (const t of graph.initializer ?? []) upcastTensorInline(t);
}

/**
 * Every FLOAT16 value of the graph becomes FLOAT: initializers (external ones re-laid into a new
 * weights blob, 64-byte aligned, other dtypes copied as they are), Constant / ConstantOfShape
 * values, Cast(to = FLOAT16), graph inputs, outputs and value infos. The model is changed in place.
 *
 * Semantics: the graph computes the same function in fp32 with exactly the fp16 weights' values
 * (f16 → f32 is exact), so results differ from the fp16 graph only by fp16 rounding of activations.
 * Cost: one pass over the weights (table lookup per value); the blob doubles for fp16 weights.
 */
export function upcastFloat16(model: ModelProto, weights: Uint8Array, weightsFile: string): Uint8Array {
  const graph = model.graph;
  if (!graph) throw new Error("upcastFloat16: model has no graph");
  upcastGraphTypes(graph);
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let size = 0;
  for (const t of graph.initializer ?? []) {
    const loc = externalLocation(t);
    if (!loc || loc.location !== weightsFile) continue;
    const length = loc.length ?? weights.byteLength - loc.offset;
    if (loc.offset + length > weights.byteLength) throw new Error(`upcastFloat16: initializer ${t.name} lies outside ${weightsFile}`);
    let bytes = weights.subarray(loc.offset, loc.offset + length);
    if (t.dataType === DataType.FLOAT16) {
      const f32 = f16ToF32(new Uint16Array(bytes.slice().buffer));
      bytes = new Uint8Array(f32.buffer);
      t.dataType = DataType.FLOAT;
    }
    const offset = Math.ceil(size / ALIGN) * ALIGN;
    chunks.push({ offset, bytes });
    size = offset + bytes.length;
    t.externalData = [
      { key: "location", value: weightsFile },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(bytes.length) },
    ];
  }
  for (const t of graph.initializer ?? []) if (t.dataType === DataType.FLOAT16) throw new Error(`upcastFloat16: initializer ${t.name} is fp16 in another external file`);
  const out = new Uint8Array(size);
  for (const c of chunks) out.set(c.bytes, c.offset);
  return out;
}
