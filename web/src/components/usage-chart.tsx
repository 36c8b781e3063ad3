import { formatInt } from "../lib/format.js";

export interface DayPoint {
  date: string;
  prompt_tokens: number;
  completion_tokens: number;
}

/**
 * Tokens per UTC day as stacked bars (prompt below, completion above), inline SVG, for the last
 * `days` days ending at `to` (days without usage are drawn as empty slots).
 */
export function UsageChart({ data, to, days = 30 }: { data: DayPoint[]; to: string; days?: number }) {
  const byDate = new Map(data.map((d) => [d.date, d]));
  const end = Date.parse(`${to}T00:00:00Z`);
  const slots = Array.from({ length: days }, (_, i) => {
    const date = new Date(end - (days - 1 - i) * 86_400_000).toISOString().slice(0, 10);
    const d = byDate.get(date);
    return { date, prompt: d?.prompt_tokens ?? 0, completion: d?.completion_tokens ?? 0 };
  });
  const max = Math.max(1, ...slots.map((s) => s.prompt + s.completion));
  const width = 600;
  const height = 180;
  const pad = { left: 48, bottom: 22, top: 8 };
  const plotH = height - pad.bottom - pad.top;
  const barW = (width - pad.left) / days;
  const y = (v: number) => pad.top + plotH - (v / max) * plotH;
  const total = slots.reduce((s, d) => s + d.prompt + d.completion, 0);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Tokens per day over the last ${days} days: ${formatInt(total)} in total`}>
        <line x1={pad.left} x2={width} y1={y(0)} y2={y(0)} class="axis" />
        <text x={pad.left - 6} y={y(max) + 4} class="tick" text-anchor="end">
          {formatInt(max)}
        </text>
        <text x={pad.left - 6} y={y(0)} class="tick" text-anchor="end">
          0
        </text>
        {slots.map((s, i) => {
          const x = pad.left + i * barW + 1;
          const w = Math.max(1, barW - 2);
          return (
            <g key={s.date}>
              <title>{`${s.date}: ${formatInt(s.prompt)} prompt + ${formatInt(s.completion)} completion tokens`}</title>
              <rect x={x} width={w} y={y(s.prompt)} height={y(0) - y(s.prompt)} class="bar-prompt" />
              <rect x={x} width={w} y={y(s.prompt + s.completion)} height={y(s.prompt) - y(s.prompt + s.completion)} class="bar-completion" />
              {i % 7 === days % 7 ? (
                <text x={x + w / 2} y={height - 6} class="tick" text-anchor="middle">
                  {s.date.slice(5)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span class="swatch bar-prompt" /> prompt tokens <span class="swatch bar-completion" /> completion tokens (UTC days)
      </figcaption>
    </figure>
  );
}
