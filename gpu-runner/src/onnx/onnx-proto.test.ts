import { describe, expect, it } from "vitest";
import { DataType, GraphBuilder, WeightBlob } from "./index.js";
import { decodeModel, encodeModel, toNumber } from "./onnx-proto.js";

describe("onnx proto", () => {
  it("encodes and decodes a graph with symbolic dims, attributes and external weights", () => {
    const g = new GraphBuilder();
    const blob = new WeightBlob("w.bin");
    const x = g.input("x", DataType.FLOAT, ["batch", 3]);
    const w = g.initializer(blob.add("w", [3, 2], Float32Array.from([1, 2, 3, 4, 5, 6])));
    const y = g.node("ReduceMean", [g.node("MatMul", [x, w])], { axes: [-1], keepdims: 1 }, { output: "y" });
    g.output(y, DataType.FLOAT, ["batch", 1]);
    const model = decodeModel(g.encode("t"));
    expect(model.graph?.input?.[0].type?.tensorType?.shape?.dim?.map((d) => d.dimParam ?? toNumber(d.dimValue))).toEqual(["batch", 3]);
    const reduce = model.graph?.node?.find((n) => n.opType === "ReduceMean");
    expect(reduce?.attribute?.find((a) => a.name === "axes")?.ints?.map(toNumber)).toEqual([-1]);
    const init = model.graph?.initializer?.[0];
    expect(init?.dataLocation).toBe(1);
    expect(init?.externalData).toEqual([
      { key: "location", value: "w.bin" },
      { key: "offset", value: "0" },
      { key: "length", value: "24" },
    ]);
    expect(Array.from(new Float32Array(blob.bytes().buffer))).toEqual([1, 2, 3, 4, 5, 6]);
    // Re-encoding the decoded model gives the same bytes.
    expect(encodeModel(model)).toEqual(g.encode("t"));
  });

  it("aligns weights in the blob to 64 bytes", () => {
    const blob = new WeightBlob("w.bin");
    blob.add("a", [3], new Float32Array(3));
    const t = blob.add("b", [2], Float32Array.from([7, 8]));
    expect(t.externalData?.find((e) => e.key === "offset")?.value).toBe("64");
    expect(blob.byteLength).toBe(72);
    expect(() => blob.add("c", [2, 2], new Float32Array(3))).toThrow(/need 4 values/);
  });
});
