/**
 * Finds the first object key that appears twice in the same JSON object (JSON.parse silently
 * keeps the last one, which would let a file carry two tensors under one name).
 * Precondition: `text` is valid JSON (checked by JSON.parse first). Linear time, no recursion.
 */
export function findDuplicateJsonKey(text: string): { key: string; path: string } | null {
  // One frame per open container: an object tracks its keys; an array has keys = null.
  const frames: Array<{ keys: Set<string> | null; expectKey: boolean; name: string }> = [];
  let lastKey = "";
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
          continue;
        }
        if (d === 0x22) break;
        j++;
      }
      const top = frames[frames.length - 1];
      if (top && top.keys && top.expectKey) {
        const raw = text.slice(i + 1, j);
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        if (top.keys.has(key)) return { key, path: frames.map((f) => f.name).filter(Boolean).join(".") };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = frames[frames.length - 1];
      const name = parent && parent.keys ? lastKey : "";
      frames.push({ keys: c === 0x7b ? new Set() : null, expectKey: c === 0x7b, name });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      frames.pop();
    } else if (c === 0x2c /* , */) {
      const top = frames[frames.length - 1];
      if (top && top.keys) top.expectKey = true;
    }
    i++;
  }
  return null;
}
