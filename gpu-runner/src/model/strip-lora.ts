/**
 * The LoRA-free twin of a serving graph: the same graph with every LoRA input removed and the
 * nodes that only carried LoRA deltas pruned, for steps where no row has a mix (and for merged
 * sessions, whose rows never do). Base decode then pays nothing for the 7 × layers zero-width
 * LoRA MatMuls and their glue (issue #11: "no LoRA tax on base batches").
 *
 * Semantics: treat every LoRA input as all-zero (or empty) and propagate:
 * - MatMul / Mul / Cast / Identity / Reshape / Unsqueeze / Squeeze / Transpose with a zero input
 *   (first input for the shape ops) → zero;
 * - Where(c, a, b) with b zero and (c or a) zero → zero (c zero = all false → b);
 * - Gather(data, indices) with indices zero (empty) → zero; ScatterND(data, idx, updates) with
 *   updates zero (empty) → data;
 * - Add(a, b) / Sub(a, b) with b zero → a; Add with a zero → b; both zero → zero;
 * - float initializers whose values are all 0 count as zero.
 * Zero values are pruned; an Add whose one side is zero is replaced by its other side (consumers
 * rewired, or an Identity when it feeds a graph output). Any other op reading a zero value makes
 * the graph unstrippable (null): the caller then keeps the LoRA graph for base steps, unless its
 * only zero inputs are zero initializers, which it keeps reading (stripping only some of the LoRA
 * inputs: lora-variants.ts).
 * On x + 0 = x the twin computes exactly what the LoRA graph computes with R = Rc = 0.
 */
import { decodeModel, encodeModel, type GraphProto, type NodeProto, type TensorProto } from "../onnx/index.js";

const PASS_FIRST = new Set(["Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Transpose"]);
const ANY_ZERO = new Set(["MatMul", "Mul"]);

function isZeroInitializer(t: TensorProto): boolean {
  if (t.dataType !== 1 || t.dataLocation === 1) return false; // float32, inline
  if (t.rawData) return new Float32Array(Uint8Array.from(t.rawData).buffer).every((v) => v === 0); // copy: may be a Buffer view
  return (t.floatData ?? []).every((v) => v === 0);
}

/** The graph bytes without the given inputs (see Semantics), or null when they cannot be pruned. */
export function stripLoraInputs(graphBytes: Uint8Array, loraInputs: ReadonlySet<string>): Uint8Array | null {
  const model = decodeModel(graphBytes);
  const graph: GraphProto = model.graph ?? {};
  const zero = new Set<string>(loraInputs);
  /** Zero initializers: pruned where a rule applies, but still there for a node that keeps them. */
  const zeroInitializers = new Set<string>();
  for (const t of graph.initializer ?? []) if (t.name && isZeroInitializer(t)) zeroInitializers.add(t.name);
  for (const name of zeroInitializers) zero.add(name);
  /** Value → the value that replaces it (an Add with a zero side). */
  const alias = new Map<string, string>();
  const resolve = (name: string): string => {
    let n = name;
    while (alias.has(n)) n = alias.get(n)!;
    return n;
  };
  const kept: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const inputs = (node.input ?? []).map(resolve);
    const out = node.output ?? [];
    const z = inputs.map((i) => zero.has(i));
    const op = node.domain ? `${node.domain}:${node.opType}` : node.opType;
    if (!z.some(Boolean)) {
      kept.push({ ...node, input: inputs });
      continue;
    }
    if (ANY_ZERO.has(op) || (PASS_FIRST.has(op) && z[0]) || (op === "Where" && z[2] && (z[0] || z[1])) || (op === "Gather" && z[1])) {
      for (const o of out) zero.add(o);
    } else if (op === "ScatterND" && z[2] && !z[0]) {
      alias.set(out[0]!, inputs[0]!); // no updates: the data itself
    } else if ((op === "Add" || op === "Sub") && z[1]) {
      if (z[0] && op === "Add") zero.add(out[0]!);
      else if (z[0]) return null; // 0 − 0 fine, but keep the rule set small
      else alias.set(out[0]!, inputs[0]!);
    } else if (op === "Add" && z[0]) {
      alias.set(out[0]!, inputs[1]!);
    } else if (inputs.every((i, k) => !z[k] || zeroInitializers.has(i))) {
      kept.push({ ...node, input: inputs }); // e.g. Where(mask, x·Ac, 0) when only the per-row path is stripped
    } else {
      return null;
    }
  }
  // Graph outputs that became aliases get an Identity; outputs that became zero cannot be served.
  for (const o of graph.output ?? []) {
    if (zero.has(o.name)) return null;
    if (alias.has(o.name)) kept.push({ opType: "Identity", name: `${o.name}/strip-lora`, input: [resolve(o.name)], output: [o.name] });
  }
  const used = new Set(kept.flatMap((n) => n.input ?? []));
  const stripped: GraphProto = {
    ...graph,
    node: kept,
    input: (graph.input ?? []).filter((i) => !loraInputs.has(i.name)),
    initializer: (graph.initializer ?? []).filter((t) => t.name !== undefined && (used.has(t.name) || t.dataLocation === 1)),
    valueInfo: (graph.valueInfo ?? []).filter((v) => !zero.has(v.name) && !alias.has(v.name)),
  };
  return encodeModel({ ...model, graph: stripped });
}
