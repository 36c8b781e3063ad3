import type { Adapter } from "../lib/api.js";
import { adapterPath, formatBytes, formatInt } from "../lib/format.js";
import { addToMix } from "../lib/mix.js";
import { Pill } from "./ui.js";

/** An adapter's visibility, base model and tags as pills. */
export function AdapterPills({ adapter: a }: { adapter: Pick<Adapter, "visibility" | "base_model" | "tags"> }) {
  return (
    <p class="pills">
      <Pill kind={a.visibility}>{a.visibility}</Pill>
      <Pill kind="model">{a.base_model}</Pill>
      {a.tags.map((t) => (
        <Pill key={t}>#{t}</Pill>
      ))}
    </p>
  );
}

/** One adapter in the marketplace grid. */
export function AdapterCard({ adapter: a }: { adapter: Adapter }) {
  const shortTargets = [...new Set(a.targets.map((t) => t.split(".").pop()!))];
  return (
    <article class="adapter-card" aria-labelledby={`card-${a.id}`}>
      <h2 id={`card-${a.id}`}>
        <a href={adapterPath(a.ref)}>
          <span class="muted">{a.owner}/</span>
          {a.name}
          <span class="muted">@{a.version}</span>
        </a>
      </h2>
      <AdapterPills adapter={a} />
      {a.description ? <p class="description">{a.description}</p> : null}
      <dl class="facts">
        <div>
          <dt>rank</dt>
          <dd>{a.rank}</dd>
        </div>
        <div>
          <dt>targets</dt>
          <dd title={a.targets.join("\n")}>
            {a.targets.length} · {shortTargets.join(", ")}
          </dd>
        </div>
        <div>
          <dt>size</dt>
          <dd>{formatBytes(a.size_bytes)}</dd>
        </div>
        <div>
          <dt>uses</dt>
          <dd title={`${formatInt(a.uses)} completions served with it, ${formatInt(a.downloads)} downloads`}>{formatInt(a.uses)}</dd>
        </div>
      </dl>
      <button
        type="button"
        class="secondary small"
        onClick={() => addToMix(a)}
        aria-label={`Add ${a.ref} to the mix`}
      >
        + mix
      </button>
    </article>
  );
}
