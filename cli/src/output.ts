import type { Io } from "./io.js";

/** Pretty JSON on stdout (what `--json` prints: the API's answer as it came). */
export function printJson(io: Io, value: unknown): void {
  io.stdout(JSON.stringify(value, null, 2) + "\n");
}

/** A plain text table: a header row, then one row per item, columns padded to their widest cell. */
export function printTable(io: Io, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  io.stdout([line(header), ...rows.map(line)].join("\n") + "\n");
}

/** `key: value` lines, keys aligned. */
export function printFields(io: Io, fields: Array<[string, string | number]>): void {
  const width = Math.max(...fields.map(([k]) => k.length));
  io.stdout(fields.map(([k, v]) => `${(k + ":").padEnd(width + 1)} ${v}`).join("\n") + "\n");
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * A progress bar on stderr, redrawn in place, when stderr is a terminal; otherwise silent
 * until `done`, which prints one summary line (logs and pipes get no carriage returns).
 */
export function progressBar(io: Io, label: string) {
  const width = 30;
  let last = -1;
  return {
    update({ loaded, total }: { loaded: number; total: number }) {
      if (!io.stderrIsTTY || total <= 0) return;
      const fraction = Math.min(1, loaded / total);
      const percent = Math.floor(fraction * 100);
      if (percent === last) return;
      last = percent;
      const filled = Math.round(fraction * width);
      io.stderr(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(percent).padStart(3)}% ${formatBytes(loaded)} / ${formatBytes(total)}`);
    },
    done(total: number) {
      io.stderr(`${io.stderrIsTTY ? "\r\x1b[2K" : ""}${label}: ${formatBytes(total)} sent\n`);
    },
  };
}
