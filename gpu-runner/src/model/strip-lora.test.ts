import { describe, expect, it } from "vitest";
import { DataType, decodeModel, GraphBuilder } from "../onnx/index.js";
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
