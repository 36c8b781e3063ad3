import { useEffect, useRef, useState } from "preact/hooks";
import { Field, modelOptions, SelectField, type SelectOption } from "../components/field.js";
import { CopyButton, Notice } from "../components/ui.js";
import { api, errorMessage, type ChatMessage, type Composition, type MixEntry, type Model } from "../lib/api.js";
import { mixEntries, useMix } from "../lib/mix.js";
import { tokenShade, tokenTitle } from "../lib/shade.js";
import { curlFor } from "../lib/snippets.js";

interface Token {
  text: string;
  logprob: number | null;
}
interface Column {
  key: string;
  title: string;
  /** What is sent besides the shared fields: an ad-hoc mix or a saved composition. */
  extra: { adapters: MixEntry[] } | { composition: string };
}
interface ColumnState {
  tokens: Token[];
  status: "idle" | "running" | "done" | "stopped" | "error";
  error: string;
  finish: string | null;
}

const idle: ColumnState = { tokens: [], status: "idle", error: "", finish: null };

/** One prompt (or chat), streamed side by side: the base model, the current mix, optionally a saved composition. */
export function PlaygroundPage() {
  const [mix] = useMix();
  const [models, setModels] = useState<Model[]>([]);
  const [compositions, setCompositions] = useState<Composition[]>([]);
  const [model, setModel] = useState(mix[0]?.base_model ?? "");
  const [mode, setMode] = useState<"prompt" | "chat">("prompt");
  const [prompt, setPrompt] = useState("Once upon a time");
  const [messages, setMessages] = useState<ChatMessage[]>([{ role: "user", content: "Tell me a story." }]);
  const [params, setParams] = useState({ max_tokens: 32, temperature: 0.8, top_p: 1, top_k: 0, seed: 1 });
  const [second, setSecond] = useState("");
  const [states, setStates] = useState<Record<string, ColumnState>>({});
  const [error, setError] = useState("");
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    api().models.list().then(
      (r) => {
        setModels(r.data);
        setModel((m) => m || r.data[0]?.id || "");
      },
      (e) => setError(errorMessage(e)),
    );
    api().compositions.list().then((r) => setCompositions(r.data), () => {});
    return () => abort.current?.abort();
  }, []);

  const columns: Column[] = [
    { key: "base", title: "Base model", extra: { adapters: [] } },
    ...(mix.length ? [{ key: "mix", title: "Current mix", extra: { adapters: mixEntries(mix) } }] : []),
    ...(second ? [{ key: "second", title: `Composition ${second}`, extra: { composition: second } }] : []),
  ];

  /** Exactly the body sent for a column (the curl button copies this). */
  const bodyFor = (c: Column) => {
    const common = { model, ...params, stream: true, ...c.extra };
    return mode === "prompt" ? { ...common, prompt, logprobs: 0 } : { ...common, messages };
  };
  const pathFor = () => (mode === "prompt" ? "/v1/completions" : "/v1/chat/completions");

  const run = async () => {
    abort.current?.abort();
    const controller = new AbortController();
    abort.current = controller;
    setError("");
    const fresh: Record<string, ColumnState> = {};
    for (const c of columns) fresh[c.key] = { ...idle, status: "running" };
    setStates(fresh);
    const patch = (key: string, f: (s: ColumnState) => ColumnState) => setStates((all) => ({ ...all, [key]: f(all[key] ?? idle) }));
    await Promise.all(
      columns.map(async (c) => {
        const body = bodyFor(c);
        try {
          if (mode === "prompt") {
            for await (const chunk of api().completions.stream(body as Parameters<ReturnType<typeof api>["completions"]["stream"]>[0], { signal: controller.signal })) {
              const choice = chunk.choices[0];
              if (!choice) continue;
              // One event per sampled token (its text may be empty while a UTF-8 sequence is incomplete);
              // the closing event carries finish_reason and usage, and no token.
              const lp = choice.logprobs?.token_logprobs?.[0] ?? null;
              const isToken = choice.text !== "" || (choice.logprobs?.tokens?.length ?? 0) > 0;
              if (isToken) patch(c.key, (s) => ({ ...s, tokens: [...s.tokens, { text: choice.text, logprob: lp }] }));
              if (choice.finish_reason) patch(c.key, (s) => ({ ...s, finish: choice.finish_reason }));
            }
          } else {
            for await (const chunk of api().chat.stream(body as Parameters<ReturnType<typeof api>["chat"]["stream"]>[0], { signal: controller.signal })) {
              const choice = chunk.choices[0];
              if (!choice) continue;
              const text = choice.delta.content;
              if (text) patch(c.key, (s) => ({ ...s, tokens: [...s.tokens, { text, logprob: null }] }));
              if (choice.finish_reason) patch(c.key, (s) => ({ ...s, finish: choice.finish_reason }));
            }
          }
          patch(c.key, (s) => ({ ...s, status: "done" }));
        } catch (e) {
          if (controller.signal.aborted) patch(c.key, (s) => ({ ...s, status: "stopped" }));
          else patch(c.key, (s) => ({ ...s, status: "error", error: errorMessage(e) }));
        }
      }),
    );
  };
  const running = Object.values(states).some((s) => s.status === "running");
  const setParam = (k: keyof typeof params) => (e: Event) => setParams({ ...params, [k]: Number((e.currentTarget as HTMLInputElement).value) });

  return (
    <section aria-labelledby="play-title">
      <h1 id="play-title">Playground</h1>
      <Notice>{error}</Notice>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <div class="form-grid">
          <SelectField id="pg-model" label="Model" value={model} onChange={(e) => setModel(e.currentTarget.value)} options={modelOptions(models)} />
          <fieldset class="field">
            <legend>Input</legend>
            <label class="radio">
              <input type="radio" name="mode" checked={mode === "prompt"} onChange={() => setMode("prompt")} /> prompt
            </label>
            <label class="radio">
              <input type="radio" name="mode" checked={mode === "chat"} onChange={() => setMode("chat")} /> chat
            </label>
          </fieldset>
          <SelectField
            id="pg-second"
            label="Compare with"
            value={second}
            onChange={(e) => setSecond(e.currentTarget.value)}
            options={[["", "(no second mix)"], ...compositions.filter((c) => c.base_model === model).map((c): SelectOption => [c.name, `composition ${c.name}`])]}
          />
        </div>
        {mode === "prompt" ? (
          <>
            <label for="pg-prompt">Prompt</label>
            <textarea id="pg-prompt" rows={3} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
          </>
        ) : (
          <fieldset class="messages">
            <legend>Messages</legend>
            {messages.map((m, i) => (
              <div class="message" key={i}>
                <label for={`msg-role-${i}`} class="visually-hidden">
                  Role of message {i + 1}
                </label>
                <select id={`msg-role-${i}`} value={m.role} onChange={(e) => setMessages(messages.map((x, j) => (j === i ? { ...x, role: e.currentTarget.value as ChatMessage["role"] } : x)))}>
                  <option value="system">system</option>
                  <option value="user">user</option>
                  <option value="assistant">assistant</option>
                </select>
                <label for={`msg-${i}`} class="visually-hidden">
                  Content of message {i + 1}
                </label>
                <textarea id={`msg-${i}`} rows={2} value={m.content} onInput={(e) => setMessages(messages.map((x, j) => (j === i ? { ...x, content: e.currentTarget.value } : x)))} />
                <button type="button" class="secondary small" aria-label={`Remove message ${i + 1}`} onClick={() => setMessages(messages.filter((_, j) => j !== i))}>
                  ✕
                </button>
              </div>
            ))}
            <button type="button" class="secondary small" onClick={() => setMessages([...messages, { role: "user", content: "" }])}>
              Add message
            </button>
          </fieldset>
        )}
        <details class="params" open>
          <summary>Parameters (the same for every column)</summary>
          <div class="form-grid">
            <Field id="pg-max" label="max_tokens">
              <input id="pg-max" type="number" min={1} max={512} value={params.max_tokens} onInput={setParam("max_tokens")} />
            </Field>
            <Field id="pg-temp" label="temperature">
              <input id="pg-temp" type="number" min={0} max={2} step={0.05} value={params.temperature} onInput={setParam("temperature")} />
            </Field>
            <Field id="pg-topp" label="top_p">
              <input id="pg-topp" type="number" min={0.01} max={1} step={0.01} value={params.top_p} onInput={setParam("top_p")} />
            </Field>
            <Field id="pg-topk" label="top_k (0 = off)">
              <input id="pg-topk" type="number" min={0} step={1} value={params.top_k} onInput={setParam("top_k")} />
            </Field>
            <Field id="pg-seed" label="seed">
              <input id="pg-seed" type="number" step={1} value={params.seed} onInput={setParam("seed")} />
            </Field>
          </div>
        </details>
        <div class="actions">
          {running ? (
            <button type="button" class="danger" onClick={() => abort.current?.abort()}>
              Stop
            </button>
          ) : (
            <button type="submit">{Object.keys(states).length ? "Regenerate" : "Run"}</button>
          )}
          {mix.length === 0 ? <span class="muted small">The current mix is empty: compose one to compare against the base model.</span> : null}
        </div>
      </form>

      <div class="columns" style={{ "--cols": columns.length }}>
        {columns.map((c) => {
          const s = states[c.key] ?? idle;
          return (
            <section class="card output" key={c.key} aria-labelledby={`col-${c.key}`} data-column={c.key}>
              <header>
                <h2 id={`col-${c.key}`}>{c.title}</h2>
                <CopyButton text={curlFor(location.origin, pathFor(), bodyFor(c))} label="Copy curl" />
              </header>
              {"adapters" in c.extra && c.extra.adapters.length ? (
                <p class="muted small">{c.extra.adapters.map((a) => `${a.id}×${a.weight}`).join(" + ")}</p>
              ) : null}
              <p class="generated" aria-live="polite" aria-busy={s.status === "running"} data-status={s.status}>
                {mode === "prompt" ? <span class="prompt-echo">{prompt}</span> : null}
                {s.tokens.map((t, i) => (
                  <span key={i} class="tok" style={{ background: tokenShade(t.logprob) }} title={tokenTitle(t.text, t.logprob)}>
                    {t.text}
                  </span>
                ))}
              </p>
              <p class="muted small">
                {s.status === "running" ? "streaming…" : s.status === "idle" ? "" : `${s.status}${s.finish ? ` (${s.finish})` : ""} · ${s.tokens.length} tokens`}
              </p>
              <Notice>{s.error}</Notice>
            </section>
          );
        })}
      </div>
      {mode === "prompt" ? <p class="muted small">Shading: the less likely a sampled token was, the darker it is; hover a token for its probability.</p> : null}
    </section>
  );
}
