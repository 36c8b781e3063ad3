import { useEffect, useState } from "preact/hooks";
import { Field, SelectField } from "../components/field.js";
import { ActionButton, Notice } from "../components/ui.js";
import { api, errorMessage, type Adapter, type BakedAdapter, type BakeStrategy, type Composition } from "../lib/api.js";
import { adapterPath, formatBytes } from "../lib/format.js";
import { addToMix, mixCost, mixEntries, mixItemOf, useMix, type MixItem } from "../lib/mix.js";

const STRATEGIES: BakeStrategy[] = ["linear", "svd", "ties", "dare_linear", "dare_ties", "magnitude_prune"];
const NEEDS_DENSITY = new Set<BakeStrategy>(["ties", "dare_linear", "dare_ties", "magnitude_prune"]);

function WeightControl({ item, onChange }: { item: MixItem; onChange: (w: number) => void }) {
  const [text, setText] = useState(String(item.weight));
  useEffect(() => setText(String(item.weight)), [item.weight]);
  const id = `w-${item.ref.replace(/[^a-z0-9]/gi, "-")}`;
  return (
    <div class="weight">
      <label for={`${id}-range`} class="visually-hidden">
        Weight of {item.ref} (slider)
      </label>
      <input id={`${id}-range`} type="range" min={-2} max={2} step={0.05} value={Math.max(-2, Math.min(2, item.weight))} onInput={(e) => onChange(Number(e.currentTarget.value))} />
      <label for={`${id}-num`} class="visually-hidden">
        Weight of {item.ref} (exact)
      </label>
      <input
        id={`${id}-num`}
        type="number"
        step="any"
        value={text}
        aria-invalid={!Number.isFinite(Number(text)) || text.trim() === ""}
        onInput={(e) => {
          setText(e.currentTarget.value);
          const v = Number(e.currentTarget.value);
          if (e.currentTarget.value.trim() !== "" && Number.isFinite(v)) onChange(v);
        }}
      />
    </div>
  );
}

function BakeForm({ composition }: { composition: Composition }) {
  const [strategy, setStrategy] = useState<BakeStrategy>("linear");
  const [density, setDensity] = useState("0.5");
  const [rank, setRank] = useState("8");
  const [name, setName] = useState(`${composition.name}-baked`);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [result, setResult] = useState<BakedAdapter | null>(null);
  const id = composition.id;
  return (
    <form
      class="bake"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setError("");
        setResult(null);
        try {
          setResult(
            await api().compositions.bake(composition.id, {
              strategy,
              name,
              rank: rank ? Number(rank) : undefined,
              density: NEEDS_DENSITY.has(strategy) ? Number(density) : undefined,
              seed: strategy.startsWith("dare") ? 0 : undefined,
            }),
          );
        } catch (err) {
          setError(errorMessage(err));
        } finally {
          setBusy(false);
        }
      }}
    >
      <div class="form-grid">
        <SelectField id={`${id}-strategy`} label="Strategy" value={strategy} onChange={(e) => setStrategy(e.currentTarget.value as BakeStrategy)} options={STRATEGIES.map((s) => [s, s])} />
        {NEEDS_DENSITY.has(strategy) ? (
          <Field id={`${id}-density`} label="Density">
            <input id={`${id}-density`} type="number" min={0.01} max={1} step={0.01} value={density} onInput={(e) => setDensity(e.currentTarget.value)} />
          </Field>
        ) : null}
        <Field id={`${id}-rank`} label="Rank">
          <input id={`${id}-rank`} type="number" min={1} step={1} value={rank} onInput={(e) => setRank(e.currentTarget.value)} />
        </Field>
        <Field id={`${id}-bname`} label="New adapter name" grow>
          <input id={`${id}-bname`} value={name} onInput={(e) => setName(e.currentTarget.value)} required />
        </Field>
      </div>
      <button type="submit" disabled={busy}>
        {busy ? "Baking…" : "Bake"}
      </button>
      <Notice>{error}</Notice>
      {result ? (
        <div class="notice notice-ok" role="status">
          <p>
            Baked <a href={adapterPath(result.ref)}>{result.ref}</a> ({result.bake.strategy}, rank {result.rank}): discarded energy{" "}
            <strong data-testid="discarded-energy">{(result.bake.total_discarded_energy * 100).toFixed(3)} %</strong> of ‖ΔW‖².
          </p>
          <p data-testid="bake-fidelity">
            Measured on the model against the exact mix over {result.bake.fidelity.positions} positions: top-1 agreement{" "}
            <strong>{(result.bake.fidelity.top1_agreement * 100).toFixed(1)} %</strong>, KL mean {result.bake.fidelity.kl_mean.toPrecision(3)} nats (max{" "}
            {result.bake.fidelity.kl_max.toPrecision(3)}).
          </p>
          <details>
            <summary>Per module</summary>
            <ul>
              {result.bake.per_module.map((m) => (
                <li key={m.module}>
                  <code>{m.module}</code>: rank {m.rank}, {(m.discarded_energy * 100).toFixed(3)} %
                </li>
              ))}
            </ul>
          </details>
        </div>
      ) : null}
    </form>
  );
}

/** Build a weighted mix, see what it costs, save it as a composition, bake saved ones. */
export function ComposePage() {
  const [mix, setMix] = useMix();
  const [compositions, setCompositions] = useState<Composition[]>([]);
  const [candidates, setCandidates] = useState<Adapter[]>([]);
  const [search, setSearch] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");
  const baseModel = mix[0]?.base_model;
  const cost = mixCost(mix);

  const loadCompositions = () => api().compositions.list().then((r) => setCompositions(r.data), (e) => setError(errorMessage(e)));
  useEffect(() => void loadCompositions(), []);
  const loadIntoMix = async (c: Composition) => {
    const full = await Promise.all(c.adapters.map((e) => api().adapters.get(e.id)));
    setMix(full.map((a, i) => mixItemOf(a, c.adapters[i]!.weight)));
  };
  const deleteComposition = async (c: Composition) => {
    await api().compositions.delete(c.id);
    await loadCompositions();
  };
  useEffect(() => {
    const t = setTimeout(() => {
      api()
        .adapters.list({ q: search || undefined, base_model: baseModel, limit: 20 })
        .then((r) => setCandidates(r.data), () => {});
    }, 200);
    return () => clearTimeout(t);
  }, [search, baseModel]);

  const update = (ref: string, patch: Partial<MixItem>) => setMix(mix.map((m) => (m.ref === ref ? { ...m, ...patch } : m)));
  const mixed = mix.some((m) => m.base_model !== baseModel);

  return (
    <section aria-labelledby="compose-title">
      <h1 id="compose-title">Compose</h1>
      <p>
        ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ: any finite weight, negative ones subtract an adapter. The mix is used by the playground as
        "current mix".
      </p>
      <Notice>{error}</Notice>
      <Notice kind="ok">{message}</Notice>
      <div class="card">
        <h2>Current mix</h2>
        {mix.length === 0 ? <p class="muted">Empty: add adapters below or from the marketplace (+ mix).</p> : null}
        <ul class="mix">
          {mix.map((m) => (
            <li key={m.ref}>
              <a href={adapterPath(m.ref)}>{m.ref}</a>
              <span class="muted small">
                rank {m.rank} · {formatBytes(m.size_bytes)}
              </span>
              <WeightControl item={m} onChange={(w) => update(m.ref, { weight: w })} />
              <button type="button" class="secondary small" aria-label={`Remove ${m.ref} from the mix`} onClick={() => setMix(mix.filter((x) => x.ref !== m.ref))}>
                Remove
              </button>
            </li>
          ))}
        </ul>
        {mix.length ? (
          <p data-testid="mix-cost">
            Combined rank <strong>{cost.rank}</strong> over {cost.modules} modules · <strong>{formatBytes(cost.bytes)}</strong> of adapter weights
            {mixed ? <span class="error-text"> · adapters of different base models cannot be mixed</span> : null}
          </p>
        ) : null}
        <form
          class="inline"
          onSubmit={async (e) => {
            e.preventDefault();
            setError("");
            setMessage("");
            try {
              const c = await api().compositions.create({ name, adapters: mixEntries(mix) });
              setMessage(`Saved composition "${c.name}".`);
              setName("");
              await loadCompositions();
            } catch (err) {
              setError(errorMessage(err));
            }
          }}
        >
          <label for="comp-name">Save as composition</label>
          <input id="comp-name" value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="pirate-poet" required />
          <button type="submit" disabled={mix.length === 0 || mixed}>
            Save
          </button>
        </form>
      </div>

      <div class="card">
        <h2>Add adapters</h2>
        <label for="add-search">Find {baseModel ? `(${baseModel})` : ""}</label>
        <input id="add-search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="name, tag…" />
        <ul class="candidates">
          {candidates.map((a) => (
            <li key={a.id}>
              <span>
                {a.ref} <span class="muted small">rank {a.rank}</span>
              </span>
              <button
                type="button"
                class="secondary small"
                disabled={mix.some((m) => m.ref === a.ref)}
                aria-label={`Add ${a.ref}`}
                onClick={() => addToMix(a)}
              >
                Add
              </button>
            </li>
          ))}
        </ul>
      </div>

      <div class="card">
        <h2>Saved compositions</h2>
        {compositions.length === 0 ? <p class="muted">None yet.</p> : null}
        {compositions.map((c) => (
          <details key={c.id} class="composition">
            <summary>
              <strong>{c.name}</strong> · {c.base_model} · {c.adapters.map((a) => `${a.ref}×${a.weight}`).join(" + ")}
            </summary>
            <div class="actions">
              <ActionButton class="secondary small" action={() => loadIntoMix(c)} onError={setError}>
                Load into the mix
              </ActionButton>
              <ActionButton class="danger small" action={() => deleteComposition(c)} onError={setError}>
                Delete
              </ActionButton>
            </div>
            <BakeForm composition={c} />
          </details>
        ))}
      </div>
    </section>
  );
}
