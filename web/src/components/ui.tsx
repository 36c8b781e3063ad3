import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { errorMessage } from "../lib/api.js";

/** An error (or success) line, announced to screen readers. */
export function Notice({ kind = "error", children }: { kind?: "error" | "ok" | "info"; children: ComponentChildren }) {
  if (!children) return null;
  return (
    <p class={`notice notice-${kind}`} role={kind === "error" ? "alert" : "status"}>
      {children}
    </p>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      {label}
    </p>
  );
}

/** Copies `text`; says "Copied" for a moment. */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      class="secondary small"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          // Clipboard API unavailable (insecure origin): fall back to a selection copy.
          const ta = document.createElement("textarea");
          ta.value = text;
          document.body.append(ta);
          ta.select();
          document.execCommand("copy");
          ta.remove();
        }
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      }}
    >
      {done ? "Copied" : label}
    </button>
  );
}

/** Code in tabs (curl / JS / Python), each copyable. */
export function CodeTabs({ tabs, label }: { tabs: Array<{ name: string; code: string }>; label: string }) {
  const [active, setActive] = useState(0);
  const current = tabs[active]!;
  return (
    <div class="code-tabs">
      <div role="tablist" aria-label={label}>
        {tabs.map((t, i) => (
          <button
            type="button"
            role="tab"
            id={`tab-${label}-${i}`}
            aria-selected={i === active}
            aria-controls={`panel-${label}-${i}`}
            class={i === active ? "tab active" : "tab"}
            onClick={() => setActive(i)}
            key={t.name}
          >
            {t.name}
          </button>
        ))}
        <CopyButton text={current.code} label={`Copy ${current.name}`} />
      </div>
      <pre role="tabpanel" id={`panel-${label}-${active}`} aria-labelledby={`tab-${label}-${active}`} tabIndex={0}>
        <code>{current.code}</code>
      </pre>
    </div>
  );
}

/** A bar from 0 to 1. */
export function Progress({ value, label }: { value: number; label: string }) {
  return (
    <div class="progress">
      <progress max={1} value={value} aria-label={label} />
      <span>{Math.round(value * 100)} %</span>
    </div>
  );
}

/** A tag/visibility pill. */
export function Pill({ children, kind = "" }: { children: ComponentChildren; kind?: string }) {
  return <span class={`pill ${kind}`}>{children}</span>;
}

/** A button that runs an async action; a failure's message goes to `onError` (the page's error line). */
export function ActionButton(props: { class?: string; label?: string; action: () => Promise<void>; onError: (message: string) => void; children: ComponentChildren }) {
  return (
    <button
      type="button"
      class={props.class}
      aria-label={props.label}
      onClick={async () => {
        try {
          await props.action();
        } catch (e) {
          props.onError(errorMessage(e));
        }
      }}
    >
      {props.children}
    </button>
  );
}
