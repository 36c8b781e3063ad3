import { useEffect, useState } from "preact/hooks";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { AdapterPills } from "../components/adapter-card.js";
import { CodeTabs, Loading, Notice } from "../components/ui.js";
import { api, errorMessage, LoraedgeError, type Adapter } from "../lib/api.js";
import { adapterPath, formatBytes, formatInt, formatTime } from "../lib/format.js";
import { addToMix } from "../lib/mix.js";
import { navigate } from "../lib/router.js";
import { curlSnippet, openaiJsSnippet, openaiPythonSnippet } from "../lib/snippets.js";

interface ModuleRow {
  module: string;
  rank: number;
  alpha: number;
  scale: number;
  in: number | null;
  out: number | null;
}

/**
 * Per-module rank/alpha/scale from the uploaded config (core's resolver, loaded on demand so the
 * app's first render does not carry core's parser), shapes from the model's manifest.
 */
async function moduleRows(adapter: Adapter, configText: string, manifest: ModelManifest | null): Promise<ModuleRow[]> {
  const { parsePeftConfig, moduleScaleResolver } = await import("#core/peft/index");
  const resolve = moduleScaleResolver(parsePeftConfig(JSON.parse(configText)));
  const shapes = new Map((manifest?.targets ?? []).map((t) => [t.module, t]));
  return adapter.targets.map((module) => {
    const s = resolve(module);
    const t = shapes.get(module);
    return { module, rank: s.rank, alpha: s.alpha, scale: s.scale, in: t?.in ?? null, out: t?.out ?? null };
  });
}

function saveBlob(bytes: BlobPart, name: string, type: string) {
  const href = URL.createObjectURL(new Blob([bytes], { type }));
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(href), 1000);
}

/** One adapter: config, modules with shapes, versions, how to call it, downloads, owner actions. */
export function AdapterPage({ refPath }: { refPath: string }) {
  const [adapter, setAdapter] = useState<Adapter | null>(null);
  const [config, setConfig] = useState<Record<string, unknown> | null>(null);
  const [rows, setRows] = useState<ModuleRow[]>([]);
  const [versions, setVersions] = useState<Adapter[]>([]);
  const [isOwner, setIsOwner] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");
  const [deleteBlock, setDeleteBlock] = useState("");
  const [edit, setEdit] = useState({ description: "", tags: "" });

  const load = async () => {
    setError("");
    try {
      const client = api();
      const a = await client.adapters.get(refPath);
      const [configText, model, mine, same] = await Promise.all([
        client.adapters.config(a.id),
        client.models.get(a.base_model).catch(() => null),
        client.adapters.list({ owner: "me", q: a.name, limit: 100 }),
        client.adapters.list({ q: a.name, limit: 100 }),
      ]);
      setAdapter(a);
      setConfig(JSON.parse(configText) as Record<string, unknown>);
      setRows(await moduleRows(a, configText, model?.manifest ?? null));
      setIsOwner(mine.data.some((m) => m.id === a.id));
      setVersions(same.data.filter((v) => v.owner === a.owner && v.name === a.name));
      setEdit({ description: a.description, tags: a.tags.join(",") });
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  useEffect(() => {
    setAdapter(null);
    void load();
  }, [refPath]);

  if (error && !adapter) return <Notice>{error}</Notice>;
  if (!adapter || !config) return <Loading />;
  const a = adapter;
  const snippet = { origin: location.origin, model: a.base_model, adapters: [{ id: a.ref, weight: 1 }], prompt: "Once upon a time" };

  const act = async (what: () => Promise<unknown>, done: string) => {
    setMessage("");
    setError("");
    try {
      await what();
      setMessage(done);
      await load();
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  const remove = async (force: boolean) => {
    setError("");
    setDeleteBlock("");
    try {
      const res = await api().adapters.delete(a.id, { force });
      const extra = res.deleted_compositions.length ? ` and your compositions ${res.deleted_compositions.join(", ")}` : "";
      sessionStorage.setItem("loraedge.flash", `Deleted ${a.ref}${extra}.`);
      navigate("/?owner=me");
    } catch (e) {
      if (e instanceof LoraedgeError && e.status === 409) {
        setDeleteBlock(e.message);
      } else setError(errorMessage(e));
    }
  };

  return (
    <article aria-labelledby="adapter-title">
      <p class="crumbs">
        <a href="/">Marketplace</a> › {a.owner}
      </p>
      <h1 id="adapter-title">
        {a.owner}/{a.name}
        <span class="muted">@{a.version}</span>
      </h1>
      <AdapterPills adapter={a} />
      {a.description ? <p>{a.description}</p> : null}
      <Notice kind="ok">{message}</Notice>
      <Notice>{error}</Notice>
      <div class="actions">
        <button type="button" onClick={() => addToMix(a)}>
          Add to mix
        </button>
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            try {
              const { bytes } = await api().adapters.download(a.id);
              saveBlob(bytes as Uint8Array<ArrayBuffer>, "adapter_model.safetensors", "application/octet-stream");
            } catch (e) {
              setError(errorMessage(e));
            }
          }}
        >
          Download safetensors
        </button>
        <button type="button" class="secondary" onClick={() => saveBlob(JSON.stringify(config, null, 2), "adapter_config.json", "application/json")}>
          Download config
        </button>
      </div>

      <section aria-labelledby="config-title" class="card">
        <h2 id="config-title">Configuration</h2>
        <dl class="facts wide">
          <div><dt>rank (largest)</dt><dd>{a.rank}</dd></div>
          <div><dt>lora_alpha</dt><dd>{a.alpha}</dd></div>
          <div><dt>scale</dt><dd>{a.scale.toPrecision(4)}</dd></div>
          <div><dt>rsLoRA</dt><dd>{config.use_rslora ? "yes (α/√r)" : "no (α/r)"}</dd></div>
          <div><dt>target_modules</dt><dd><code>{JSON.stringify(config.target_modules ?? null)}</code></dd></div>
          <div><dt>rank_pattern</dt><dd><code>{JSON.stringify(config.rank_pattern ?? {})}</code></dd></div>
          <div><dt>alpha_pattern</dt><dd><code>{JSON.stringify(config.alpha_pattern ?? {})}</code></dd></div>
          <div><dt>dtype</dt><dd>{a.dtype}</dd></div>
          <div><dt>size</dt><dd>{formatBytes(a.size_bytes)}</dd></div>
          <div><dt>uses (completions)</dt><dd>{formatInt(a.uses)}</dd></div>
          <div><dt>downloads</dt><dd>{formatInt(a.downloads)}</dd></div>
          <div><dt>sha256</dt><dd><code class="hash">{a.sha256}</code></dd></div>
          <div><dt>id</dt><dd><code>{a.id}</code></dd></div>
        </dl>
      </section>

      {a.bake ? (
        <section aria-labelledby="bake-title" class="card">
          <h2 id="bake-title">Baked from a composition</h2>
          <dl class="facts wide">
            <div><dt>strategy</dt><dd>{a.bake.strategy}</dd></div>
            <div><dt>rank</dt><dd>{a.bake.rank}</dd></div>
            {a.bake.density !== null ? <div><dt>density</dt><dd>{a.bake.density}</dd></div> : null}
            <div><dt>discarded energy</dt><dd>{(a.bake.total_discarded_energy * 100).toFixed(3)} % of ‖ΔW‖²</dd></div>
            <div><dt>top-1 agreement with the exact mix</dt><dd>{(a.bake.fidelity.top1_agreement * 100).toFixed(1)} % of {a.bake.fidelity.positions} positions</dd></div>
            <div><dt>KL(mix ‖ baked)</dt><dd>mean {a.bake.fidelity.kl_mean.toPrecision(3)}, max {a.bake.fidelity.kl_max.toPrecision(3)} nats</dd></div>
          </dl>
        </section>
      ) : null}

      <section aria-labelledby="modules-title" class="card">
        <h2 id="modules-title">Target modules ({rows.length})</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">module</th>
                <th scope="col">r</th>
                <th scope="col">α</th>
                <th scope="col">scale</th>
                <th scope="col">lora_A</th>
                <th scope="col">lora_B</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.module}>
                  <td><code>{r.module}</code></td>
                  <td>{r.rank}</td>
                  <td>{r.alpha}</td>
                  <td>{r.scale.toPrecision(3)}</td>
                  <td>{r.in === null ? "?" : `[${r.rank}, ${r.in}]`}</td>
                  <td>{r.out === null ? "?" : `[${r.out}, ${r.rank}]`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>

      <section aria-labelledby="versions-title" class="card">
        <h2 id="versions-title">Versions</h2>
        <ul class="versions">
          {versions.map((v) => (
            <li key={v.id}>
              {v.id === a.id ? <strong>{v.version} (this one)</strong> : <a href={adapterPath(v.ref)}>{v.version}</a>} · {formatTime(v.created_at)} · rank {v.rank}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="call-title" class="card">
        <h2 id="call-title">How to call it</h2>
        <CodeTabs
          label="call"
          tabs={[
            { name: "curl", code: curlSnippet(snippet) },
            { name: "openai (JS)", code: openaiJsSnippet(snippet) },
            { name: "openai (Python)", code: openaiPythonSnippet(snippet) },
          ]}
        />
      </section>

      {isOwner ? (
        <section aria-labelledby="owner-title" class="card">
          <h2 id="owner-title">Owner actions</h2>
          <div class="actions">
            <button
              type="button"
              class="secondary"
              onClick={() => act(() => api().adapters.update(a.id, { visibility: a.visibility === "public" ? "private" : "public" }), `Now ${a.visibility === "public" ? "private" : "public"}.`)}
            >
              Make {a.visibility === "public" ? "private" : "public"}
            </button>
            <a class="button secondary" href={`/upload?name=${encodeURIComponent(a.name)}&base_model=${encodeURIComponent(a.base_model)}`}>
              Upload a new version
            </a>
          </div>
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void act(() => api().adapters.update(a.id, { description: edit.description, tags: edit.tags }), "Saved.");
            }}
          >
            <label for="edit-desc">Description</label>
            <textarea id="edit-desc" rows={3} value={edit.description} onInput={(e) => setEdit({ ...edit, description: e.currentTarget.value })} />
            <label for="edit-tags">Tags (comma-separated)</label>
            <input id="edit-tags" value={edit.tags} onInput={(e) => setEdit({ ...edit, tags: e.currentTarget.value })} />
            <button type="submit">Save description and tags</button>
          </form>
          <h3>Delete</h3>
          <p class="muted small">Deleting is refused while a saved composition uses this adapter.</p>
          <button type="button" class="danger" onClick={() => void remove(false)}>
            Delete {a.ref}
          </button>
          {deleteBlock ? (
            <div class="notice notice-error" role="alert">
              <p>
                <strong>Not deleted:</strong> {deleteBlock}
              </p>
              <p>
                A composition that uses this adapter would break. If only your own compositions use it, deleting with them
                removes those compositions too. When another tenant's composition uses it, it cannot be deleted; make it private to stop new uses.
              </p>
              <button type="button" class="danger small" onClick={() => void remove(true)}>
                Delete it and my compositions that use it
              </button>
            </div>
          ) : null}
        </section>
      ) : null}
    </article>
  );
}
