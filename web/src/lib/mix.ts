import { useEffect, useState } from "preact/hooks";

/** One adapter of the current mix, with what the compose page shows about it. */
export interface MixItem {
  /** `owner/name@version` (works wherever an id does). */
  ref: string;
  id: string;
  base_model: string;
  rank: number;
  size_bytes: number;
  targets: string[];
  /** wᵢ in ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ: any finite number, negative allowed. */
  weight: number;
}

/**
 * The mix being composed, shared by the compose page, the adapter cards ("add to mix") and the
 * playground ("current mix"). Kept in sessionStorage beside the key.
 */
const KEY = "loraedge.mix";
const listeners = new Set<() => void>();

export function getMix(): MixItem[] {
  try {
    const parsed = JSON.parse(sessionStorage.getItem(KEY) ?? "[]") as MixItem[];
    return Array.isArray(parsed) ? parsed : [];
  } catch {
    return [];
  }
}

export function setMix(items: MixItem[]): void {
  sessionStorage.setItem(KEY, JSON.stringify(items));
  for (const l of listeners) l();
}

/** The mix item of an adapter (an API `Adapter` has more fields: only these are kept). */
export function mixItemOf(a: Omit<MixItem, "weight">, weight = 1): MixItem {
  return { ref: a.ref, id: a.id, base_model: a.base_model, rank: a.rank, size_bytes: a.size_bytes, targets: a.targets, weight };
}

export function addToMix(adapter: Omit<MixItem, "weight">, weight = 1): void {
  const items = getMix().filter((m) => m.ref !== adapter.ref);
  setMix([...items, mixItemOf(adapter, weight)]);
}

export function useMix(): [MixItem[], (items: MixItem[]) => void] {
  const [items, setItems] = useState(getMix());
  useEffect(() => {
    const update = () => setItems(getMix());
    listeners.add(update);
    return () => void listeners.delete(update);
  }, []);
  return [items, setMix];
}

/**
 * What serving the mix costs, as the runner concatenates it (core's composeMix): per module the
 * ranks add up; the combined rank is the largest per-module sum. Bytes: the adapters' files.
 * Adapters with weight 0 still count (they are sent and concatenated).
 */
export function mixCost(items: Array<Pick<MixItem, "rank" | "targets" | "size_bytes">>): { rank: number; bytes: number; modules: number } {
  const perModule = new Map<string, number>();
  for (const item of items) for (const t of item.targets) perModule.set(t, (perModule.get(t) ?? 0) + item.rank);
  return {
    rank: Math.max(0, ...perModule.values()),
    bytes: items.reduce((s, i) => s + i.size_bytes, 0),
    modules: perModule.size,
  };
}

/** The `adapters` body field of a completion with this mix. */
export const mixEntries = (items: MixItem[]) => items.map((m) => ({ id: m.ref, weight: m.weight }));
