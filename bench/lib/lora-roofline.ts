/**
 * The unavoidable extra work of distinct adapters in one decode step, as a bare ONNX graph: for
 * every unmerged target, each row's x·Aᵗ·Bᵗ on unpadded inputs that are already resident (fed once,
 * never repacked): chunks of width K = gcd of the rows' ranks, so no column is padding.
 * Its run time is t_lora in case 3a's efficiency (t_base + t_lora) ÷ t_distinct; `loraPrefillRoofline`
 * is the same for a prefill (case 4's floor).
 */
import type { ComposedMix, ComposedModule } from "#core/lora/types";
import { float32, type HostTensor, type Session } from "../../gpu-runner/src/backend/index.js";
import { loadBackend } from "../../gpu-runner/src/backend/index.js";
import { chunkBlock } from "../../gpu-runner/src/model/lora-chunks.js";
import { DataType, GraphBuilder } from "../../gpu-runner/src/onnx/index.js";
import { benchSessionOptions } from "./workload.js";

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

export interface LoraRoofline {
  session: Session;
  feeds: Record<string, HostTensor>;
  /** Bytes of Aᵗ/Bᵗ the graph reads per run (unpadded). */
  bytes: number;
  outputs: string[];
}

export async function loraRoofline(targets: readonly { module: string; in: number; out: number }[], mixes: readonly ComposedMix[]): Promise<LoraRoofline> {
  const g = new GraphBuilder();
  const feeds: Record<string, HostTensor> = {};
  const outputs: string[] = [];
  let bytes = 0;
  targets.forEach((t, idx) => {
    const modules = mixes.map((m) => m.modules.get(t.module)).filter((m) => m !== undefined && m.rank > 0);
    if (modules.length === 0) return;
    const K = modules.reduce((k, m) => gcd(k, m!.rank), 0);
    const blocks = modules.map((m) => chunkBlock(m!, K));
    const N = blocks.reduce((n, b) => n + b.count, 0);
    const at = new Float32Array(N * t.in * K); // [N, in, K]
    const bt = new Float32Array(N * K * t.out); // [N, K, out]
    let n = 0;
    for (const b of blocks) {
      at.set(b.at, n * t.in * K);
      bt.set(b.bt, n * K * t.out);
      n += b.count;
    }
    const x = Float32Array.from({ length: N * t.in }, (_, i) => ((i * 7919) % 97) / 97 - 0.5); // [N, 1, in]: each chunk's row
    const names = [`x${idx}`, `at${idx}`, `bt${idx}`];
    g.input(names[0]!, DataType.FLOAT, [N, 1, t.in]);
    g.input(names[1]!, DataType.FLOAT, [N, t.in, K]);
    g.input(names[2]!, DataType.FLOAT, [N, K, t.out]);
    const y = g.node("MatMul", [g.node("MatMul", [names[0]!, names[1]!]), names[2]!], {}, { output: `y${idx}` }); // [N, 1, out]
    g.output(y, DataType.FLOAT, [N, 1, t.out]);
    outputs.push(y);
    feeds[names[0]!] = float32(x, [N, 1, t.in]);
    feeds[names[1]!] = float32(at, [N, t.in, K]);
    feeds[names[2]!] = float32(bt, [N, K, t.out]);
    bytes += (at.length + bt.length) * 4;
  });
  const backend = await loadBackend("node");
  const session = await backend.createSession(g.encode("lora-roofline"), benchSessionOptions());
  return { session, feeds, bytes, outputs };
}

/**
 * The LoRA FLOPs of one prefill on the shared path, and nothing else, as a bare ONNX graph: for
 * every target of `mix`, (x·Aᵗc)·Bᵗc on x [T, in] (one input per distinct d_in, as the layer's
 * activations are shared by its targets), Aᵗc [in, R] and Bᵗc [R, out] fed resident. Each product
 * ends in a Slice to [1, 1] so ORT's arena holds the [T, out] results (as inside the model) instead
 * of allocating 84 fresh outputs per run. No mask, no Add, no graph around it: ONNX Runtime's own
 * speed on exactly the products the FLOP ratio counts (case 2's ceiling).
 */
export async function sharedPathRoofline(mix: ComposedMix, tokens: number): Promise<{ session: Session; feeds: Record<string, HostTensor>; flops: number; outputs: string[] }> {
  const g = new GraphBuilder();
  const feeds: Record<string, HostTensor> = {};
  const outputs: string[] = [];
  let flops = 0;
  const xByDim = new Map<number, string>();
  const origin = g.int64s([0, 0]);
  const one = g.int64s([1, 1]);
  let idx = 0;
  for (const m of mix.modules.values()) {
    if (m.rank === 0) continue;
    let x = xByDim.get(m.inFeatures);
    if (!x) {
      x = g.input(`x${m.inFeatures}`, DataType.FLOAT, [tokens, m.inFeatures]);
      feeds[x] = float32(Float32Array.from({ length: tokens * m.inFeatures }, (_, i) => ((i * 7919) % 97) / 97 - 0.5), [tokens, m.inFeatures]); // [T, in]
      xByDim.set(m.inFeatures, x);
    }
    const at = g.input(`ac${idx}`, DataType.FLOAT, [m.inFeatures, m.rank]);
    const bt = g.input(`bc${idx}`, DataType.FLOAT, [m.rank, m.outFeatures]);
    feeds[at] = float32(m.at, [m.inFeatures, m.rank]); // [in, R]
    feeds[bt] = float32(m.bt, [m.rank, m.outFeatures]); // [R, out]
    const y = g.node("MatMul", [g.node("MatMul", [x, at]), bt]); // [T, out]
    const corner = g.node("Slice", [y, origin, one], {}, { output: `y${idx}` }); // [1, 1]
    g.output(corner, DataType.FLOAT, [1, 1]);
    outputs.push(corner);
    flops += 2 * tokens * m.rank * (m.inFeatures + m.outFeatures);
    idx++;
  }
  const backend = await loadBackend("node");
  const session = await backend.createSession(g.encode("shared-path-roofline"), benchSessionOptions());
  return { session, feeds, flops, outputs };
}

/**
 * The same unavoidable LoRA work for a prefill of `tokens` tokens per row: for every unmerged
 * target, each row's x·Aᵗ·Bᵗ with its own rank, unpadded and resident. Rows are grouped by their
 * rank on the module (one batched MatMul pair per group: x [n, S, in] · Aᵗ [n, in, r] · Bᵗ [n, r, out]),
 * and a group's x is one input shared by every module with the same input size and the same rows
 * (as the model's activations are): no chunk duplicates a row's tokens, no column is padding.
 */
export async function loraPrefillRoofline(
  targets: readonly { module: string; in: number; out: number }[],
  mixes: readonly ComposedMix[],
  tokens: number,
): Promise<LoraRoofline> {
  const g = new GraphBuilder();
  const feeds: Record<string, HostTensor> = {};
  const outputs: string[] = [];
  let bytes = 0;
  /** One x per (input size, group's rows). */
  const xs = new Map<string, string>();
  targets.forEach((t, idx) => {
    const groups = new Map<number, ComposedModule[]>();
    for (const mix of mixes) {
      const m = mix.modules.get(t.module);
      if (!m || m.rank === 0) continue;
      const list = groups.get(m.rank);
      if (list) list.push(m);
      else groups.set(m.rank, [m]);
    }
    for (const [r, modules] of groups) {
      const n = modules.length;
      const rowsKey = `${t.in}|${modules.map((m) => mixes.findIndex((mix) => mix.modules.get(t.module) === m)).join(",")}`;
      let x = xs.get(rowsKey);
      if (!x) {
        x = `x${xs.size}`;
        xs.set(rowsKey, x);
        g.input(x, DataType.FLOAT, [n, tokens, t.in]);
        feeds[x] = float32(Float32Array.from({ length: n * tokens * t.in }, (_, i) => ((i * 7919) % 97) / 97 - 0.5), [n, tokens, t.in]);
      }
      const at = new Float32Array(n * t.in * r); // [n, in, r]
      const bt = new Float32Array(n * r * t.out); // [n, r, out]
      modules.forEach((m, i) => {
        at.set(m.at, i * t.in * r);
        bt.set(m.bt, i * r * t.out);
      });
      const name = `${idx}_${r}`;
      g.input(`at${name}`, DataType.FLOAT, [n, t.in, r]);
      g.input(`bt${name}`, DataType.FLOAT, [n, r, t.out]);
      const y = g.node("MatMul", [g.node("MatMul", [x, `at${name}`]), `bt${name}`], {}, { output: `y${name}` }); // [n, S, out]
      g.output(y, DataType.FLOAT, [n, tokens, t.out]);
      outputs.push(y);
      feeds[`at${name}`] = float32(at, [n, t.in, r]);
      feeds[`bt${name}`] = float32(bt, [n, r, t.out]);
      bytes += (at.length + bt.length) * 4;
    }
  });
  const backend = await loadBackend("node");
  const session = await backend.createSession(g.encode("lora-prefill-roofline"), benchSessionOptions());
  return { session, feeds, bytes, outputs };
}
