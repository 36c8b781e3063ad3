/** Small plots for the scaling curve: an ASCII chart for the terminal and an SVG file. */
export interface Series {
  name: string;
  points: Array<{ x: number; y: number }>;
}

/** Horizontal bars, one per x, scaled to the largest y. */
export function asciiBars(series: Series, width = 50): string {
  const maxY = Math.max(...series.points.map((p) => p.y), 1e-9);
  const label = Math.max(...series.points.map((p) => String(p.x).length));
  return series.points
    .map((p) => {
      const bar = "█".repeat(Math.max(1, Math.round((p.y / maxY) * width)));
      return `${String(p.x).padStart(label)} │${bar} ${p.y.toFixed(1)}`;
    })
    .join("\n");
}

/** A line chart with a log2 x axis; one y axis per series (left, right). */
export function svgLineChart(options: {
  title: string;
  xLabel: string;
  left: Series & { unit: string };
  right?: Series & { unit: string };
}): string {
  const W = 720;
  const H = 400;
  const m = { l: 70, r: 70, t: 40, b: 50 };
  const xs = options.left.points.map((p) => p.x);
  const lx = (x: number) => Math.log2(x);
  const xMin = lx(Math.min(...xs));
  const xMax = Math.max(lx(Math.max(...xs)), xMin + 1);
  const X = (x: number) => m.l + ((lx(x) - xMin) / (xMax - xMin)) * (W - m.l - m.r);
  const axis = (s: Series) => Math.max(...s.points.map((p) => p.y), 1e-9) * 1.1;
  const path = (s: Series, top: number) =>
    s.points
      .map((p, i) => `${i ? "L" : "M"}${X(p.x).toFixed(1)},${(H - m.b - (p.y / top) * (H - m.t - m.b)).toFixed(1)}`)
      .join(" ");
  const leftTop = axis(options.left);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${options.title}</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="#1f77b4"/>`,
    ...xs.map(
      (x) =>
        `<text x="${X(x)}" y="${H - m.b + 18}" text-anchor="middle">${x}</text><line x1="${X(x)}" y1="${H - m.b}" x2="${X(x)}" y2="${H - m.b + 5}" stroke="black"/>`,
    ),
    `<text x="${W / 2}" y="${H - 10}" text-anchor="middle">${options.xLabel}</text>`,
    `<text x="18" y="${H / 2}" transform="rotate(-90 18 ${H / 2})" text-anchor="middle" fill="#1f77b4">${options.left.name} (${options.left.unit})</text>`,
    `<text x="${m.l - 6}" y="${m.t + 4}" text-anchor="end" fill="#1f77b4">${leftTop.toFixed(0)}</text>`,
    `<text x="${m.l - 6}" y="${H - m.b}" text-anchor="end" fill="#1f77b4">0</text>`,
    `<path d="${path(options.left, leftTop)}" fill="none" stroke="#1f77b4" stroke-width="2"/>`,
  ];
  if (options.right) {
    const rightTop = axis(options.right);
    parts.push(
      `<line x1="${W - m.r}" y1="${m.t}" x2="${W - m.r}" y2="${H - m.b}" stroke="#d62728"/>`,
      `<text x="${W - 18}" y="${H / 2}" transform="rotate(90 ${W - 18} ${H / 2})" text-anchor="middle" fill="#d62728">${options.right.name} (${options.right.unit})</text>`,
      `<text x="${W - m.r + 6}" y="${m.t + 4}" fill="#d62728">${rightTop.toFixed(0)}</text>`,
      `<path d="${path(options.right, rightTop)}" fill="none" stroke="#d62728" stroke-width="2" stroke-dasharray="6 3"/>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n");
}
