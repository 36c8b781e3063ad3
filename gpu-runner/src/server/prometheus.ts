/**
 * Minimal Prometheus text exposition (format 0.0.4): counters and gauges rendered from
 * snapshots at scrape time, and histograms observed as requests finish.
 */
export type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Collects families for one scrape. */
export class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels: Labels = {}): this {
    this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
    return this;
  }

  /** Family header plus one sample per labelled value. */
  metric(
    name: string,
    type: "counter" | "gauge",
    help: string,
    values: number | { labels: Labels; value: number }[],
  ): this {
    this.family(name, type, help);
    if (typeof values === "number") this.sample(name, values);
    else for (const v of values) this.sample(name, v.value, v.labels);
    return this;
  }

  histogram(h: Histogram): this {
    this.family(h.name, "histogram", h.help);
    for (const series of h.series()) {
      let cumulative = 0;
      h.buckets.forEach((le, i) => {
        cumulative += series.counts[i]!;
        this.sample(`${h.name}_bucket`, cumulative, { ...series.labels, le: String(le) });
      });
      this.sample(`${h.name}_bucket`, series.count, { ...series.labels, le: "+Inf" });
      this.sample(`${h.name}_sum`, series.sum, series.labels);
      this.sample(`${h.name}_count`, series.count, series.labels);
    }
    return this;
  }

  text(): string {
    return this.lines.join("\n") + "\n";
  }
}

interface Series {
  labels: Labels;
  counts: number[];
  sum: number;
  count: number;
}

/** A histogram with fixed upper bounds (`le`), per label set. */
export class Histogram {
  private readonly bySeries = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = JSON.stringify(labels);
    let s = this.bySeries.get(key);
    if (!s) this.bySeries.set(key, (s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    const i = this.buckets.findIndex((le) => value <= le);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  series(): Series[] {
    return [...this.bySeries.values()];
  }
}
