import type { Stats } from "./stats.js";

export interface Goal {
  /** The measured value must be ≤ (or ≥) the target. */
  op: "<=" | ">=";
  target: number;
}

/** One reported number. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Median and spread of the samples the value came from, when repeated. */
  stats?: Stats;
  goal?: Goal;
  /** Whether the goal holds (absent without a goal). */
  holds?: boolean;
  /** One line: why a goal fails (what the profile shows), or context for the figure. */
  note?: string;
}

export interface CaseResult {
  id: string;
  title: string;
  seconds: number;
  figures: Figure[];
  /** Extra data a case wants in results.json (curves, configurations). */
  data?: Record<string, unknown>;
  /** Set when the case could not run; the reason is printed in the table. */
  skipped?: string;
}

export function figure(
  name: string,
  value: number,
  unit: string,
  extra: { stats?: Stats; goal?: Goal; note?: string } = {},
): Figure {
  const holds = extra.goal
    ? extra.goal.op === "<="
      ? value <= extra.goal.target
      : value >= extra.goal.target
    : undefined;
  return { name, value, unit, ...extra, ...(holds === undefined ? {} : { holds }) };
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + " ".repeat(width - text.length);
}

/** A fixed-width table: case, figure, measured (median ± IQR), goal, verdict. */
export function renderTable(results: readonly CaseResult[]): string {
  const rows: string[][] = [["case", "figure", "measured", "goal", "holds"]];
  for (const result of results) {
    if (result.skipped) {
      rows.push([result.id, "(skipped)", result.skipped, "", ""]);
      continue;
    }
    for (const f of result.figures) {
      const spread = f.stats && f.stats.n > 1 ? ` ±${formatNumber(f.stats.iqr / 2)}` : "";
      rows.push([
        result.id,
        f.name,
        `${formatNumber(f.value)}${spread} ${f.unit}`.trim(),
        f.goal ? `${f.goal.op} ${formatNumber(f.goal.target)}` : "",
        f.holds === undefined ? "" : f.holds ? "yes" : "NO",
      ]);
    }
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((cell, c) => pad(cell, widths[c])).join("  ").trimEnd());
  lines.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  const notes = results.flatMap((r) =>
    r.figures.filter((f) => f.note && f.holds === false).map((f) => `  ${r.id} ${f.name}: ${f.note}`),
  );
  return lines.join("\n") + (notes.length ? `\n\nGoals that do not hold:\n${notes.join("\n")}` : "");
}

/** The same table as GitHub markdown, for bench/README.md. */
export function renderMarkdownTable(results: readonly CaseResult[]): string {
  const lines = ["| case | figure | measured (median ± IQR/2) | goal | holds | note |", "|---|---|---|---|---|---|"];
  for (const result of results) {
    if (result.skipped) {
      lines.push(`| ${result.id} ${result.title} | (skipped) | ${result.skipped} | | | |`);
      continue;
    }
    for (const f of result.figures) {
      const spread = f.stats && f.stats.n > 1 ? ` ±${formatNumber(f.stats.iqr / 2)}` : "";
      lines.push(
        `| ${result.id} | ${f.name} | ${formatNumber(f.value)}${spread} ${f.unit} | ${f.goal ? `${f.goal.op} ${formatNumber(f.goal.target)}` : ""} | ${f.holds === undefined ? "" : f.holds ? "yes" : "**no**"} | ${f.note ?? ""} |`,
      );
    }
  }
  return lines.join("\n");
}
