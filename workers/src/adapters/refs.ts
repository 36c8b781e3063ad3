/** Adapter names, versions, tags and `owner/name@version` references. */

export const ADAPTER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const ADAPTER_NAME_RULE = "letters, digits, '.', '_' and '-' (1-64 chars, starting alphanumeric)";
/** semver 2.0.0 (no leading zeros in numeric parts). */
export const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
/** Versions are semver and at most 64 characters. */
export const MAX_VERSION_CHARS = 64;
export const VERSION_RULE = `semver such as 1.0.0, at most ${MAX_VERSION_CHARS} characters`;
export const isValidVersion = (v: string) => v.length <= MAX_VERSION_CHARS && SEMVER_RE.test(v);
export const TAG_RE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
export const MAX_TAGS = 16;

export interface AdapterRef {
  owner: string;
  name: string;
  /** null: the most recently uploaded version. */
  version: string | null;
}

/** Parses `owner/name@version` (or `owner/name`); null when `s` is not of that form (e.g. a plain id). */
export function parseAdapterRef(s: string): AdapterRef | null {
  const m = /^([^/@\s]+)\/([^/@\s]+)(?:@([^/@\s]+))?$/.exec(s);
  if (!m) return null;
  return { owner: m[1]!, name: m[2]!, version: m[3] ?? null };
}

/** Comma-separated tags → normalised list (trimmed, lowercased, deduplicated). Throws a message on a bad tag. */
export function parseTags(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  const tags = [...new Set(raw.split(",").map((t) => t.trim().toLowerCase()).filter((t) => t !== ""))];
  for (const t of tags) {
    if (!TAG_RE.test(t)) throw new Error(`invalid tag '${t}': lowercase letters, digits, '_', '.', '-' (1-32 chars)`);
  }
  if (tags.length > MAX_TAGS) throw new Error(`at most ${MAX_TAGS} tags`);
  return tags;
}

/** Tags as stored in D1: ",a,b," so that one LIKE '%,tag,%' matches a tag exactly. */
export const encodeTags = (tags: readonly string[]) => `,${tags.join(",")}${tags.length ? "," : ""}`;
export const decodeTags = (stored: string) => stored.split(",").filter((t) => t !== "");
