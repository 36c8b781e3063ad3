import { UsageError } from "./usage-error.js";

export interface MixTerm {
  ref: string;
  weight: number;
}

/**
 * `ref=weight` terms (`pirate=0.7`, `acme/poet@1.0.0=-0.2`), given as separate arguments and/or
 * comma-separated. Weights are finite numbers (negative allowed); a bare `ref` means weight 1.
 */
export function parseMix(args: string[]): MixTerm[] {
  const terms = args.flatMap((a) => a.split(",")).map((t) => t.trim()).filter((t) => t !== "");
  return terms.map((term) => {
    const eq = term.lastIndexOf("=");
    if (eq === 0) throw new UsageError(`'${term}': expected adapter=weight`);
    const ref = eq > 0 ? term.slice(0, eq) : term;
    const raw = eq > 0 ? term.slice(eq + 1) : "1";
    const weight = raw.trim() === "" ? NaN : Number(raw);
    if (!Number.isFinite(weight)) throw new UsageError(`'${term}': the weight '${raw}' is not a finite number`);
    return { ref, weight };
  });
}
