import { useEffect, useState } from "preact/hooks";
import { AdapterCard } from "../components/adapter-card.js";
import { Field, modelOptions, SelectField, type SelectOption } from "../components/field.js";
import { Loading, Notice } from "../components/ui.js";
import { api, errorMessage, type Adapter, type AdapterQuery, type Model } from "../lib/api.js";
import { navigate, useLocation } from "../lib/router.js";

type Filters = { q: string; base_model: string; tag: string; owner: string; visibility: string; sort: string };
const FILTER_KEYS = ["q", "base_model", "tag", "owner", "visibility", "sort"] as const;
const VISIBILITY_FILTERS: SelectOption[] = [
  ["", "any"],
  ["public", "public"],
  ["private", "private (mine)"],
];
const SORT_ORDERS: SelectOption[] = [
  ["recent", "newest"],
  ["name", "name"],
  ["uses", "most used"],
  ["downloads", "most downloaded"],
];

/** Public adapters plus the caller's own: search, filters and sort live in the URL (shareable). */
export function MarketplacePage() {
  const url = useLocation();
  const filters: Filters = { q: "", base_model: "", tag: "", owner: "", visibility: "", sort: "recent" };
  for (const k of FILTER_KEYS) filters[k] = url.searchParams.get(k) ?? filters[k];
  const queryKey = FILTER_KEYS.map((k) => filters[k]).join("\u0000");

  const [draft, setDraft] = useState(filters);
  const [models, setModels] = useState<Model[]>([]);
  const [items, setItems] = useState<Adapter[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState("");
  // A one-time message left by another page (e.g. "Deleted …" after deleting an adapter).
  const [flash] = useState(() => {
    const text = sessionStorage.getItem("loraedge.flash") ?? "";
    sessionStorage.removeItem("loraedge.flash");
    return text;
  });

  const query = (): AdapterQuery => ({
    q: filters.q || undefined,
    base_model: filters.base_model || undefined,
    tag: filters.tag || undefined,
    owner: filters.owner === "me" ? "me" : undefined,
    sort: filters.sort as AdapterQuery["sort"],
    visibility: filters.visibility === "public" || filters.visibility === "private" ? filters.visibility : undefined,
    limit: 12,
  });

  const load = async (after: string | null) => {
    setLoading(true);
    setError("");
    try {
      const page = await api().adapters.list({ ...query(), cursor: after ?? undefined });
      setItems((prev) => (after ? [...prev, ...page.data] : page.data));
      setCursor(page.next_cursor);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    setDraft(filters);
    void load(null);
  }, [queryKey]);
  useEffect(() => {
    api().models.list().then((r) => setModels(r.data), () => {});
  }, []);

  const apply = (next: Filters) => {
    const params = new URLSearchParams();
    for (const k of FILTER_KEYS) if (next[k] && !(k === "sort" && next[k] === "recent")) params.set(k, next[k]);
    const qs = params.toString();
    navigate(qs ? `/?${qs}` : "/");
  };
  const set = (k: keyof Filters) => (e: Event) => {
    const next = { ...draft, [k]: (e.currentTarget as HTMLInputElement).type === "checkbox" ? ((e.currentTarget as HTMLInputElement).checked ? "me" : "") : (e.currentTarget as HTMLInputElement).value };
    setDraft(next);
    if (k !== "q" && k !== "tag") apply(next);
  };

  return (
    <section aria-labelledby="market-title">
      <h1 id="market-title">Marketplace</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          apply(draft);
        }}
      >
        <Field id="f-q" label="Search" grow>
          <input id="f-q" type="search" placeholder="name, description or tag" value={draft.q} onInput={set("q")} />
        </Field>
        <SelectField id="f-model" label="Base model" value={draft.base_model} onChange={set("base_model")} options={[["", "any"], ...modelOptions(models)]} />
        <Field id="f-tag" label="Tag">
          <input id="f-tag" value={draft.tag} onInput={set("tag")} placeholder="e.g. style" size={10} />
        </Field>
        <SelectField id="f-vis" label="Visibility" value={draft.visibility} onChange={set("visibility")} options={VISIBILITY_FILTERS} />
        <SelectField id="f-sort" label="Sort" value={draft.sort} onChange={set("sort")} options={SORT_ORDERS} />
        <div class="field check">
          <input id="f-owner" type="checkbox" checked={draft.owner === "me"} onChange={set("owner")} />
          <label for="f-owner">only mine</label>
        </div>
        <button type="submit">Search</button>
      </form>
      <Notice kind="ok">{flash}</Notice>
      <Notice>{error}</Notice>
      {!loading && !error && items.length === 0 ? (
        <p class="empty">
          No adapters match. <a href="/upload">Upload one</a>.
        </p>
      ) : null}
      <div class="grid" aria-live="polite" aria-busy={loading}>
        {items.map((a) => (
          <AdapterCard key={a.id} adapter={a} />
        ))}
      </div>
      {loading ? <Loading /> : null}
      {cursor && !loading ? (
        <button type="button" class="secondary" onClick={() => void load(cursor)}>
          Load more
        </button>
      ) : null}
    </section>
  );
}
