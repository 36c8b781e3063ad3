import { useState } from "preact/hooks";
import { LoraedgeClient } from "../../../client/src/index.js";
import { Notice } from "../components/ui.js";
import { errorMessage } from "../lib/api.js";
import { signIn } from "../lib/session.js";

/** Sign in with a tenant API key; it is checked against the API before it is kept (sessionStorage). */
export function SignInPage() {
  const [key, setKey] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError("Enter an API key.");
    setBusy(true);
    setError("");
    try {
      await new LoraedgeClient({ baseUrl: location.origin, apiKey: trimmed }).keys.list();
      signIn(trimmed);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card narrow" aria-labelledby="signin-title">
      <h1 id="signin-title">Sign in</h1>
      <p>
        Use one of your tenant's API keys (<code>le_…</code>). It stays in this browser tab only and is
        cleared when you sign out or close the tab.
      </p>
      <form onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby="api-key-help"
          required
        />
        <p id="api-key-help" class="muted small">
          <code>npm start</code> prints a development key; more keys come from the Keys page once signed in.
        </p>
        <Notice>{error}</Notice>
        <button type="submit" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
