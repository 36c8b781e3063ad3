import { useEffect, useState } from "preact/hooks";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { Field, modelOptions, SelectField, type SelectOption } from "../components/field.js";
import { Notice, Progress } from "../components/ui.js";
import { api, errorMessage, type Model } from "../lib/api.js";
import { adapterPath, formatBytes } from "../lib/format.js";
import { navigate, useLocation } from "../lib/router.js";
import { filesFromDrop, pickPeftFiles } from "../lib/pick-files.js";
import { getApiKey } from "../lib/session.js";
import { uploadWithProgress } from "../lib/upload-xhr.js";
import type { UploadCheck } from "../lib/validate-upload.js";

const CONFIG_FILE = "adapter_config.json";
const WEIGHTS_FILE = "adapter_model.safetensors";
const VISIBILITIES: SelectOption[] = [
  ["private", "private"],
  ["public", "public"],
];

/**
 * One of the adapter's two files: a Choose/Replace button (`#file-<slot>`) and its status
 * (`#status-<slot>`: name, size, ✓ once checked without errors, or the check's errors).
 */
function FilePart(props: { name: string; slot: string; accept: string; file: File | null; checked: boolean; errors: string[] | undefined; onPick: (file: File | null) => void }) {
  const { file, errors } = props;
  return (
    <div>
      <h2 class="file-title">{props.name}</h2>
      <label class="button secondary small" for={`file-${props.slot}`}>
        {file ? "Replace" : "Choose"} {props.name}
      </label>
      <input id={`file-${props.slot}`} class="visually-hidden" type="file" accept={props.accept} aria-describedby={`status-${props.slot}`} onChange={(e) => props.onPick(e.currentTarget.files?.[0] ?? null)} />
      <div class="file-status" id={`status-${props.slot}`}>
        {file ? (
          <span>
            {file.name} · {formatBytes(file.size)} {props.checked && errors?.length === 0 ? <span class="ok-mark">✓ valid</span> : null}
          </span>
        ) : (
          <span class="muted">not chosen</span>
        )}
        {errors?.length ? (
          <ul class="file-errors" role="alert">
            {errors.map((m) => (
              <li key={m}>{m}</li>
            ))}
          </ul>
        ) : null}
      </div>
    </div>
  );
}

/** A PEFT folder (or its two files), checked in the browser with core before anything is sent. */
export function UploadPage() {
  const url = useLocation();
  const [models, setModels] = useState<Model[]>([]);
  const [manifest, setManifest] = useState<ModelManifest | null>(null);
  const [fields, setFields] = useState({
    name: url.searchParams.get("name") ?? "",
    base_model: url.searchParams.get("base_model") ?? "",
    version: "",
    visibility: "private" as "private" | "public",
    description: "",
    tags: "",
  });
  const [config, setConfig] = useState<File | null>(null);
  const [weights, setWeights] = useState<File | null>(null);
  // The adapter's own chat template, when the folder carries one (validated by the edge on upload).
  const [templateFiles, setTemplateFiles] = useState<{ tokenizerConfig: File | null; chatTemplate: File | null }>({ tokenizerConfig: null, chatTemplate: null });
  const [pickProblems, setPickProblems] = useState<string[]>([]);
  const [check, setCheck] = useState<UploadCheck | null>(null);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState("");
  const [dragging, setDragging] = useState(false);

  useEffect(() => {
    api().models.list().then(
      (r) => {
        setModels(r.data);
        setFields((f) => (f.base_model ? f : { ...f, base_model: r.data[0]?.id ?? "" }));
      },
      (e) => setError(errorMessage(e)),
    );
  }, []);
  useEffect(() => {
    if (!fields.base_model) return;
    setManifest(null);
    api().models.get(fields.base_model).then((m) => setManifest(m.manifest), (e) => setError(errorMessage(e)));
  }, [fields.base_model]);
  // Re-check whenever a file or the base model changes.
  useEffect(() => {
    setCheck(null);
    if (!config || !weights || !manifest) return;
    let cancelled = false;
    // core's parser (and zod) load with the first check, not with the app's first render.
    void Promise.all([import("../lib/validate-upload.js"), config.text(), weights.arrayBuffer()]).then(([{ checkUpload }, text, buf]) => {
      if (!cancelled) setCheck(checkUpload(text, new Uint8Array(buf), manifest));
    });
    return () => void (cancelled = true);
  }, [config, weights, manifest]);

  const take = (files: File[]) => {
    const picked = pickPeftFiles(files);
    if (picked.config) setConfig(picked.config);
    if (picked.weights) setWeights(picked.weights);
    if (picked.tokenizerConfig || picked.chatTemplate) setTemplateFiles({ tokenizerConfig: picked.tokenizerConfig, chatTemplate: picked.chatTemplate });
    setPickProblems(picked.problems);
    if (!fields.name && files[0]?.webkitRelativePath) {
      const folder = files[0].webkitRelativePath.split("/")[0]!;
      setFields((f) => ({ ...f, name: folder.toLowerCase().replace(/[^a-z0-9._-]+/g, "-") }));
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!config || !weights || !check?.ok) return;
    setError("");
    setProgress(0);
    try {
      const up = uploadWithProgress(
        getApiKey()!,
        {
          config,
          weights,
          ...(templateFiles.tokenizerConfig ? { tokenizerConfig: templateFiles.tokenizerConfig } : {}),
          ...(templateFiles.chatTemplate ? { chatTemplate: templateFiles.chatTemplate } : {}),
        },
        {
          name: fields.name,
          base_model: fields.base_model,
          version: fields.version || undefined,
          visibility: fields.visibility,
          description: fields.description || undefined,
          tags: fields.tags || undefined,
        },
        setProgress,
      );
      const adapter = await up.done;
      setProgress(1);
      navigate(adapterPath(adapter.ref));
    } catch (err) {
      setProgress(null);
      setError(errorMessage(err));
    }
  };

  const set = (k: keyof typeof fields) => (e: Event) => setFields({ ...fields, [k]: (e.currentTarget as HTMLInputElement).value });
  return (
    <section aria-labelledby="upload-title">
      <h1 id="upload-title">Upload an adapter</h1>
      <p>
        Drop a PEFT output folder (<code>adapter_config.json</code> + <code>adapter_model.safetensors</code>, as written by
        <code> save_pretrained</code>). The files are checked here against the base model before anything is sent. A{" "}
        <code>tokenizer_config.json</code> or <code>chat_template.jinja</code> in the folder is the adapter's own chat template.
      </p>
      <form onSubmit={submit} class="card">
        <div
          class={dragging ? "dropzone dragging" : "dropzone"}
          onDragOver={(e) => {
            e.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={async (e) => {
            e.preventDefault();
            setDragging(false);
            if (e.dataTransfer) take(await filesFromDrop(e.dataTransfer));
          }}
        >
          <p>Drop the folder or its two files here, or choose:</p>
          <div class="actions">
            <label class="button secondary" for="pick-folder">
              Choose folder
            </label>
            <input
              id="pick-folder"
              class="visually-hidden"
              type="file"
              {...{ webkitdirectory: "" }}
              onChange={(e) => take([...(e.currentTarget.files ?? [])])}
            />
            <label class="button secondary" for="pick-files">
              Choose files
            </label>
            <input id="pick-files" class="visually-hidden" type="file" multiple accept=".json,.safetensors" onChange={(e) => take([...(e.currentTarget.files ?? [])])} />
          </div>
        </div>
        {pickProblems.map((p) => (
          <Notice key={p}>{p}</Notice>
        ))}
        <div class="files">
          <FilePart name={CONFIG_FILE} slot="config" accept=".json,application/json" file={config} checked={check !== null} errors={check?.configErrors} onPick={setConfig} />
          <FilePart name={WEIGHTS_FILE} slot="weights" accept=".safetensors" file={weights} checked={check !== null} errors={check?.weightsErrors} onPick={setWeights} />
        </div>
        {templateFiles.tokenizerConfig || templateFiles.chatTemplate ? (
          <p class="muted" data-testid="upload-chat-template">
            Chat template: {[templateFiles.chatTemplate, templateFiles.tokenizerConfig].filter((f) => f !== null).map((f) => f!.name).join(" + ")} is sent with the
            adapter; the edge checks it and uses it for chats that name only this adapter.{" "}
            <button type="button" class="button secondary small" onClick={() => setTemplateFiles({ tokenizerConfig: null, chatTemplate: null })}>
              Leave out
            </button>
          </p>
        ) : null}
        {check?.ok && check.summary ? (
          <p class="notice notice-ok" role="status" data-testid="upload-check">
            Valid for {fields.base_model}: {check.modules.length} modules, rank {check.summary.ranks.join("/")}, α {check.summary.alpha ?? "?"}
            {check.summary.useRslora ? " (rsLoRA)" : ""}, {check.summary.dtype ?? "?"}, {check.summary.parameters.toLocaleString("en-US")} parameters
            {check.mergeOnlyTargets.length ? ` · ${check.mergeOnlyTargets.length} merge-only targets (served through a merged session)` : ""}.
          </p>
        ) : null}

        <div class="form-grid">
          <SelectField id="up-model" label="Base model" value={fields.base_model} onChange={set("base_model")} options={modelOptions(models)} required />
          <Field id="up-name" label="Name">
            <input id="up-name" value={fields.name} onInput={set("name")} required pattern="[a-z0-9][a-z0-9._\-]*" title="lowercase letters, digits, . _ -" />
          </Field>
          <Field id="up-version" label="Version">
            <input id="up-version" value={fields.version} onInput={set("version")} placeholder="1.0.0" />
          </Field>
          <SelectField id="up-vis" label="Visibility" value={fields.visibility} onChange={set("visibility")} options={VISIBILITIES} />
          <Field id="up-tags" label="Tags (comma-separated)" grow>
            <input id="up-tags" value={fields.tags} onInput={set("tags")} placeholder="style,fun" />
          </Field>
        </div>
        <label for="up-desc">Description</label>
        <textarea id="up-desc" rows={2} value={fields.description} onInput={set("description")} />
        {progress !== null ? <Progress value={progress} label="Upload progress" /> : null}
        <Notice>{error}</Notice>
        <button type="submit" disabled={!check?.ok || progress !== null}>
          Upload
        </button>
        {!check && config && weights ? <span class="muted"> checking…</span> : null}
      </form>
    </section>
  );
}
