import { describe, expect, it } from "vitest";
import { DataType, decodeModel, GraphBuilder, toNumber } from "../onnx/index.js";
import { MODEL_PRESETS } from "../model-build/index.js";
import { buildLlamaGraph } from "../model-build/llama-graph.js";
import { seededLlamaCheckpoint } from "../model-build/seeded-checkpoint.js";
import { loraInputNames } from "./onnx-model.js";
import { stripLoraInputs } from "./strip-lora.js";

const F = DataType.FLOAT;

/** y = x·W + (x·At)·Bt + Where(Mk, x·Ac, 0)·Bc, as the Llama builder writes a projection. */
function loraProjection(extra?: (g: GraphBuilder, y: string) => string): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input("x", F, ["b", "s", 4]);
  const w = g.initializer({ name: "w", dims: [4, 4], dataType: F, rawData: new Uint8Array(new Float32Array(16).fill(1).buffer) });
  const at = g.input("at", F, ["b", 4, "R"]);
  const bt = g.input("bt", F, ["b", "R", 4]);
  const ac = g.input("ac", F, [4, "Rc"]);
  const bc = g.input("bc", F, ["Rc", 4]);
  const mk = g.input("mk", F, ["b", 1, "Rc"]);
  const base = g.node("MatMul", [x, w]);
  const delta = g.node("MatMul", [g.node("MatMul", [x, at]), bt]);
  const own = g.node("Where", [g.node("Cast", [mk], { to: DataType.BOOL }), g.node("MatMul", [x, ac]), g.scalar(0)]);
  const shared = g.node("MatMul", [own, bc]);
  let y = g.node("Add", [g.node("Add", [base, delta]), shared]);
  if (extra) y = extra(g, y);
  g.node("Identity", [y], {}, { output: "y" });
  g.output("y", F, ["b", "s", 4]);
  return g.encode("t");
}

const LORA = new Set(["at", "bt", "ac", "bc", "mk"]);

describe("stripLoraInputs", () => {
  it("prunes LoRA inputs and every node that only carried them, rewiring the Adds", () => {
    const stripped = stripLoraInputs(loraProjection(), LORA)!;
    const graph = decodeModel(stripped).graph!;
    expect(graph.input!.map((i) => i.name)).toEqual(["x"]);
    expect(graph.node!.map((n) => n.opType)).toEqual(["MatMul", "Identity"]);
    expect(graph.node![1]!.input).toEqual([graph.node![0]!.output![0]]);
    expect(graph.initializer!.map((t) => t.name)).toEqual(["w"]); // the zero scalar went with its Where
  });

  it("refuses (null) when a LoRA value reaches an op it cannot reason about", () => {
    const odd = loraProjection((g, y) => g.node("Add", [y, g.node("Sigmoid", [g.input("at2", F, ["b", "s", 4])])]));
    expect(stripLoraInputs(odd, new Set([...LORA, "at2"]))).toBeNull();
  });
});

/**
 * A graph written out with its inputs (name, element type, shape, in order: what a session is fed), its
 * values renamed in node order (v0, v1, …) and every initializer read as its content (dims, type, bytes
 * or external location): two graphs that are fed the same and compute the same thing the same way,
 * whatever their other value names, print the same.
 */
function canonical(bytes: Uint8Array): string {
  const graph = decodeModel(bytes).graph!;
  const names = new Map<string, string>((graph.input ?? []).map((i) => [i.name, `input:${i.name}`]));
  const fed = (graph.input ?? []).map((i) => {
    const tensor = i.type?.tensorType;
    const dims = tensor?.shape ? (tensor.shape.dim ?? []).map((d) => d.dimParam ?? (d.dimValue === undefined ? "?" : toNumber(d.dimValue))).join(", ") : "no shape";
    return `input ${i.name}: ${tensor?.elemType} [${dims}]`;
  });
  for (const t of graph.initializer ?? []) {
    const content = t.dataLocation === 1 ? JSON.stringify(t.externalData) : Buffer.from(t.rawData ?? new Uint8Array()).toString("base64") + JSON.stringify(t.floatData ?? t.int64Data ?? []);
    names.set(t.name!, `init:${t.dataType}:${(t.dims ?? []).map(toNumber).join("x")}:${content}`);
  }
  let next = 0;
  const lines = (graph.node ?? []).map((node) => {
    const inputs = (node.input ?? []).map((i) => (i === "" ? "" : (names.get(i) ?? `?${i}`)));
    for (const o of node.output ?? []) names.set(o, `v${next++}`);
    const attributes = JSON.stringify(node.attribute ?? [], (_, v) => (typeof v === "bigint" ? String(v) : v));
    return `${node.domain ?? ""}:${node.opType}(${inputs.join(", ")}) -> ${(node.output ?? []).map((o) => names.get(o)).join(", ")} ${attributes}`;
  });
  const outputs = (graph.output ?? []).map((o) => `${o.name} = ${names.get(o.name)}`);
  return [...fed, ...lines, ...outputs].join("\n");
}

describe("the Llama builder's graph, stripped", () => {
  it("is the builder's LoRA-free graph (lora: false) up to value names: the same inputs, the same nodes, in order, on the same initializers and weights", () => {
    const preset = MODEL_PRESETS["loraedge-tiny"];
    const checkpoint = seededLlamaCheckpoint(preset.config, preset.seed);
    const serving = buildLlamaGraph(checkpoint, {});
    const control = buildLlamaGraph(checkpoint, { lora: false });
    const stripped = stripLoraInputs(serving.graph, loraInputNames(serving.spec))!;
    expect(stripped).not.toBeNull();
    expect(canonical(stripped)).toEqual(canonical(control.graph));
    expect(Buffer.compare(Buffer.from(serving.weights), Buffer.from(control.weights))).toBe(0);
  });
});
