/**
 * A small helper to emit ONNX graphs from TypeScript: unique value names, typed attributes,
 * constant initializers, and weights stored as external data in one blob (so a session can be
 * created again with other weight bytes without re-encoding the graph).
 */
import {
  DataType,
  encodeModel,
  type AttributeProto,
  type DimProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "./onnx-proto.js";
import { f32ToF16 } from "#core/dtype/index";

export type AttrValue = number | string | number[] | { float: number } | { floats: number[] } | { tensor: TensorProto };

/** Builds one attribute: integers become INT/INTS, `{float}` / `{floats}` FLOAT/FLOATS, strings STRING. */
export function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) return { name, type: 1, f: value };
    return { name, type: 2, i: value };
  }
  if (typeof value === "string") return { name, type: 3, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: 7, ints: value };
  if ("float" in value) return { name, type: 1, f: value.float };
  if ("floats" in value) return { name, type: 6, floats: value.floats };
  return { name, type: 4, t: value.tensor };
}

/** A dim: a number for a fixed size, a string for a symbolic (dynamic) one. */
export type Dim = number | string;

export function valueInfo(name: string, elemType: number, dims: readonly Dim[]): ValueInfoProto {
  const dim: DimProto[] = dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/** One weight placed in the external-data blob. */
export interface ExternalWeight {
  name: string;
  dims: number[];
  /** Byte offset in the blob. */
  offset: number;
  /** Byte length. */
  length: number;
}

const ALIGN = 64;

/**
 * Collects float32 (or fp16) weights into one blob: offsets are 64-byte aligned. The blob is built once
 * (`bytes()`), and each initializer refers to it by `location`.
 */
export class WeightBlob {
  readonly entries: ExternalWeight[] = [];
  private readonly chunks: { offset: number; data: Float32Array | Uint16Array }[] = [];
  private size = 0;

  constructor(readonly location: string) {}

  add(name: string, dims: number[], data: Float32Array): TensorProto {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`weight ${name}: dims ${dims.join("x")} need ${count} values, got ${data.length}`);
    const offset = Math.ceil(this.size / ALIGN) * ALIGN;
    const length = data.byteLength;
    this.size = offset + length;
    this.chunks.push({ offset, data });
    this.entries.push({ name, dims, offset, length });
    return externalTensor(name, DataType.FLOAT, dims, this.location, offset, length);
  }

  /** A weight stored as fp16 (round to nearest even); the graph must Cast or compute in fp16. */
  addFloat16(name: string, dims: number[], data: Float32Array): TensorProto {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`weight ${name}: dims ${dims.join("x")} need ${count} values, got ${data.length}`);
    const bits = f32ToF16(data);
    const offset = Math.ceil(this.size / ALIGN) * ALIGN;
    const length = bits.byteLength;
    this.size = offset + length;
    this.chunks.push({ offset, data: bits });
    this.entries.push({ name, dims, offset, length });
    return externalTensor(name, DataType.FLOAT16, dims, this.location, offset, length);
  }

  get byteLength(): number {
    return this.size;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    for (const { offset, data } of this.chunks) out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return out;
  }
}

export function externalTensor(name: string, dataType: number, dims: number[], location: string, offset: number, length: number): TensorProto {
  return {
    name,
    dims,
    dataType,
    dataLocation: 1,
    externalData: [
      { key: "location", value: location },
      { key: "offset", value: String(offset) },
      { key: "length", value: String(length) },
    ],
  };
}

export function int64Tensor(name: string, dims: number[], values: readonly number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(data.buffer) };
}

export function floatTensor(name: string, dims: number[], values: Float32Array | readonly number[]): TensorProto {
  const data = values instanceof Float32Array ? values : Float32Array.from(values);
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) };
}

/**
 * Graph under construction. `node(op, inputs, attrs)` returns the output name(s) so code reads
 * like the math: `const h = g.node("MatMul", [x, w])`.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { name?: string; outputs?: number; output?: string; domain?: string } = {}): string {
    return this.nodeMulti(opType, inputs, attrs, { ...options, outputs: 1 })[0];
  }

  nodeMulti(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, options: { name?: string; outputs?: number; output?: string; domain?: string } = {}): string[] {
    const name = options.name ?? this.fresh(opType);
    const count = options.outputs ?? 1;
    const outputs = count === 1 && options.output ? [options.output] : Array.from({ length: count }, (_, i) => (count === 1 ? `${name}/out` : `${name}/out${i}`));
    this.nodes.push({
      name,
      opType,
      input: inputs,
      output: outputs,
      ...(options.domain ? { domain: options.domain } : {}),
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  input(name: string, elemType: number, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: number, dims: readonly Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  initializer(tensor: TensorProto): string {
    this.initializers.push(tensor);
    return tensor.name!;
  }

  /** An int64 constant initializer, shared between uses. */
  int64s(values: readonly number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join(",")}:${values.join(",")}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_i64_${this.constants.size}`;
      this.initializers.push(int64Tensor(name, dims, values));
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant, shared between uses. */
  scalar(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = `const_f32_${this.constants.size}`;
      this.initializers.push(floatTensor(name, [], [value]));
      this.constants.set(key, name);
    }
    return name;
  }

  toModel(graphName: string, opset = 17, producer = "loraedge"): ModelProto {
    return {
      irVersion: 8,
      opsetImport: [{ domain: "", version: opset }],
      producerName: producer,
      producerVersion: "1",
      graph: { name: graphName, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
  }

  encode(graphName: string, opset = 17): Uint8Array {
    return encodeModel(this.toModel(graphName, opset));
  }
}
