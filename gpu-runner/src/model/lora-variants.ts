/**
 * Pruned twins of the LoRA graph for steps where one whole LoRA path is empty, so such a step pays
 * nothing for the other path's glue (issue #11, case 2: the LoRA graph at R = 0 is ≈ 0.85× the
 * LoRA-free graph, a fixed tax of the 84 targets' unused nodes):
 * - "shared-only": every per-row input (`lora_at` / `lora_bt` / `lora_rows`) stripped: steps where
 *   every mix row is on the shared path (one mix in a prefill, all-shared decode). Drops per target
 *   the empty Gather / two MatMuls and the ScatterND that copies the whole [b, s, out] output.
 * - "per-row-only": every shared input (`lora_ac` / `lora_bc` / `lora_mask`) stripped: steps where
 *   every mix row is on the per-row path. Drops per target the zero-width MatMuls, the mask
 *   Cast/Where, the [b, s, out] zero fill and the Add of zeros.
 * Built by the same pruning as the LoRA-free twin (`strip-lora.ts`): the stripped inputs are
 * exactly the ones the step feeds empty, so the variant computes what the full graph computes
 * (x + 0 = x), by construction; `model.case.ts` holds them equal.
 * Opened lazily in the background on the first step that could use one (that step and any until
 * it is ready run on the full graph), then kept with the model. Cost: one more copy of the base
 * weights in ONNX Runtime per variant opened (`loadModel(dir, {loraVariants: "off"})` turns it off).
 */
import type { HostTensor, Session } from "../backend/index.js";
import type { GraphSpec } from "./graph-spec.js";
import { stripLoraInputs } from "./strip-lora.js";

export type LoraVariantKind = "shared-only" | "per-row-only";

/** "lazy" (default): opened in the background when first useful; "eager": opened at load; "off": never. */
export type LoraVariantsMode = "lazy" | "eager" | "off";

/** The LoRA inputs each variant strips (the other path's inputs), per kind. */
export function variantStrippedInputs(spec: GraphSpec): Record<LoraVariantKind, Set<string>> {
  const perRow = new Set<string>();
  const shared = new Set<string>();
  for (const b of spec.targets) {
    for (const n of [b.at, b.bt, b.rows]) if (n) perRow.add(n);
    for (const n of [b.ac, b.bc, b.mask]) if (n) shared.add(n);
  }
  return { "shared-only": perRow, "per-row-only": shared };
}

/**
 * The variant a step's LoRA feeds allow: "shared-only" when every per-row input is fed empty,
 * "per-row-only" when every shared input is, null when both paths carry rows (or the graph has
 * no such inputs).
 */
export function variantFor(stripped: Record<LoraVariantKind, Set<string>>, feeds: Record<string, HostTensor>): LoraVariantKind | null {
  const allEmpty = (names: Set<string>) => names.size > 0 && [...names].every((n) => feeds[n] !== undefined && feeds[n].data.length === 0);
  if (allEmpty(stripped["shared-only"])) return "shared-only";
  if (allEmpty(stripped["per-row-only"])) return "per-row-only";
  return null;
}

export class LoraVariantSessions {
  private readonly stripped: Record<LoraVariantKind, Set<string>>;
  /** Opening or opened sessions (null: the graph could not be stripped, or opening failed). */
  private readonly opening = new Map<LoraVariantKind, Promise<Session | null>>();
  private readonly ready = new Map<LoraVariantKind, Session | null>();
  /** Steps served by each variant. */
  readonly used: Record<LoraVariantKind, number> = { "shared-only": 0, "per-row-only": 0 };
  private released = false;

  constructor(
    private readonly graph: Uint8Array,
    spec: GraphSpec,
    private readonly open: (graph: Uint8Array) => Promise<Session>,
    private readonly mode: LoraVariantsMode,
  ) {
    this.stripped = variantStrippedInputs(spec);
  }

  /** Opens both variants now ("eager" mode at load). */
  async openAll(): Promise<void> {
    await Promise.all((["shared-only", "per-row-only"] as const).map((kind) => this.start(kind)));
  }

  /**
   * The session to run these feeds on and the inputs to leave out of them: a ready variant when
   * one fits, else null (run the full graph); starts opening a fitting variant in "lazy" mode.
   */
  pick(feeds: Record<string, HostTensor>): { session: Session; strip: Set<string> } | null {
    if (this.mode === "off" || this.released) return null;
    const kind = variantFor(this.stripped, feeds);
    if (!kind) return null;
    const session = this.ready.get(kind);
    if (session) {
      this.used[kind]++;
      return { session, strip: this.stripped[kind] };
    }
    if (!this.opening.has(kind)) void this.start(kind);
    return null;
  }

  private start(kind: LoraVariantKind): Promise<Session | null> {
    let p = this.opening.get(kind);
    if (!p) {
      p = (async () => {
        const graph = stripLoraInputs(this.graph, this.stripped[kind]);
        if (!graph) return null;
        const session = await this.open(graph);
        if (this.released) {
          await session.release();
          return null;
        }
        return session;
      })().catch(() => null); // a variant that cannot open leaves the full graph in charge
      p.then((s) => this.ready.set(kind, s));
      this.opening.set(kind, p);
    }
    return p;
  }

  /** Waits for any opening in flight (tests, dispose). */
  async settled(): Promise<void> {
    await Promise.all(this.opening.values());
  }

  async release(): Promise<void> {
    this.released = true;
    const sessions = await Promise.all(this.opening.values());
    this.ready.clear();
    for (const s of sessions) await s?.release();
  }
}
