/** 1536 → "1.5 KiB". */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** 1234567 → "1,234,567". */
export const formatInt = (n: number) => Math.round(n).toLocaleString("en-US");

/** ISO time → "2026-11-30 12:24" (UTC). */
export const formatTime = (iso: string) => iso.replace("T", " ").slice(0, 16);

/** The path of an adapter page: `/adapters/owner/name@version`. */
export const adapterPath = (ref: string) => `/adapters/${ref.split("/").map(encodeURIComponent).join("/")}`;
