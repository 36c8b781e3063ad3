/**
 * graph.json: how the runtime drives one ONNX graph, as data (so exports from other tools —
 * our builder, ORT GenAI, Optimum — are described rather than hard-coded).
 */
import { z } from "zod";

const tensorRef = z.object({ name: z.string().min(1), type: z.enum(["int64", "int32"]) });

export const kvLayoutSchema = z.discriminatedUnion("layout", [
  /**
   * One tensor per layer and kind: past [batch, heads, past, headDim] in, and only this step's
   * entries out: new [batch, heads, seq, headDim] (our builder: no copy of the past comes back).
   */
  z.object({
    layout: z.literal("separate-new"),
    pastKey: z.string(),
    pastValue: z.string(),
    newKey: z.string(),
    newValue: z.string(),
  }),
  /** One tensor per layer and kind: past/present [batch, heads, seq, headDim]; names with `{i}`. */
  z.object({
    layout: z.literal("separate"),
    pastKey: z.string(),
    pastValue: z.string(),
    presentKey: z.string(),
    presentValue: z.string(),
  }),
  /** One tensor per layer stacking key and value: [2, batch, heads, seq, headDim] (GPT-2 GenAI export). */
  z.object({ layout: z.literal("stacked"), past: z.string(), present: z.string() }),
]);

export const targetBindingSchema = z
  .object({
    /** PEFT module path. */
    module: z.string().min(1),
    /** Initializer holding the weight. */
    weight: z.string().min(1),
    /** How the initializer stores W: "in_out" ([in, out], y = x·W) or "out_in" ([out, in]). */
    layout: z.enum(["in_out", "out_in"]),
    /**
     * Graph inputs of the per-row path; absent for merge-only targets. Without `rows`: Aᵗ [batch, in, R]
     * and Bᵗ [batch, R, out], every row zero-padded to the batch's largest R. With `rows` (int64 [N]):
     * rank chunks Aᵗ [N, in, K], Bᵗ [N, K, out], chunk n added into row rows[n] (only rows with a
     * per-row mix are fed, each in ⌈r/K⌉ chunks).
     */
    at: z.string().optional(),
    bt: z.string().optional(),
    rows: z.string().optional(),
    /**
     * Shared path, y += ((x·Ac) ⊙ Mk)·Bc: Ac [in, Rc], Bc [Rc, out] (the batch's unique mixes side
     * by side) and the 0/1 row mask Mk [batch, 1, Rc]. All three or none; only with at/bt. Graphs
     * written before the shared path have none: every row then takes the per-row path.
     */
    ac: z.string().optional(),
    bc: z.string().optional(),
    mask: z.string().optional(),
  })
  .superRefine((b, ctx) => {
    const shared = [b.ac, b.bc, b.mask].filter((n) => n !== undefined).length;
    if (shared !== 0 && shared !== 3) ctx.addIssue({ code: "custom", message: `target ${b.module}: ac, bc and mask go together (got ${shared} of 3)` });
    if (b.rows !== undefined && (!b.at || !b.bt)) ctx.addIssue({ code: "custom", message: `target ${b.module}: lora rows need at/bt` });
    if (shared === 3 && (!b.at || !b.bt)) ctx.addIssue({ code: "custom", message: `target ${b.module}: shared LoRA inputs need the per-row at/bt too` });
  });
export type TargetBinding = z.infer<typeof targetBindingSchema>;

export const graphSpecSchema = z.object({
  format: z.literal(1),
  /** ONNX file (weights not inline). */
  graphFile: z.string().min(1),
  /** External-data file the initializers refer to (`location`). */
  weightsFile: z.string().min(1),
  inputIds: tensorRef,
  positionIds: tensorRef.nullable(),
  /**
   * "bias": float [batch, 1, seq, past+seq] additive mask (0 / -1e9) built by the runtime.
   * "keys": [batch, past+seq] 1/0 key mask; the graph applies causality itself.
   */
  mask: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("bias"), name: z.string() }),
    z.object({ kind: z.literal("keys"), name: z.string(), type: z.enum(["int64", "int32"]) }),
  ]),
  /** int64 [batch, n] positions whose logits to compute; null = the graph returns every position. */
  logitsPositions: z.string().nullable(),
  logits: z.string().min(1),
  kv: kvLayoutSchema.and(z.object({ layers: z.number().int().positive(), heads: z.number().int().positive(), headDim: z.number().int().positive() })),
  targets: z.array(targetBindingSchema),
});
export type GraphSpec = z.infer<typeof graphSpecSchema>;

/** Replaces `{i}` with the layer index. */
export function layerName(pattern: string, layer: number): string {
  return pattern.replaceAll("{i}", String(layer));
}
