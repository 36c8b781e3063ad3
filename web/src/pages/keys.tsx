import { useEffect, useState } from "preact/hooks";
import { UsageChart } from "../components/usage-chart.js";
import { ActionButton, CopyButton, Loading, Notice } from "../components/ui.js";
import { api, errorMessage, type ApiKey, type CreatedApiKey, type UsageReport } from "../lib/api.js";
import { formatInt, formatTime } from "../lib/format.js";
import { getApiKey } from "../lib/session.js";

/** The tenant's API keys (create, revoke; a new key is shown once) and its token usage per day. */
export function KeysPage() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [usage, setUsage] = useState<UsageReport | null>(null);
  const [error, setError] = useState("");
  const current = getApiKey() ?? "";

  const load = async () => {
    try {
      const [k, u] = await Promise.all([api().keys.list(), api().usage.get()]);
      setKeys(k.data);
      setUsage(u);
    } catch (e) {
      setError(errorMessage(e));
    }
  };
  useEffect(() => void load(), []);
  const createKey = async () => {
    setError("");
    setCreated(await api().keys.create());
    await load();
  };
  const revokeKey = async (k: ApiKey, mine: boolean) => {
    if (mine && !confirm("This is the key this page is signed in with: revoking it signs you out. Revoke?")) return;
    setError("");
    await api().keys.revoke(k.id);
    await load();
  };
  const today = new Date().toISOString().slice(0, 10);
  const todayTokens = usage?.data.find((d) => d.date === today)?.total_tokens ?? 0;

  return (
    <section aria-labelledby="keys-title">
      <h1 id="keys-title">Keys & usage</h1>
      <Notice>{error}</Notice>
      <div class="card">
        <h2>API keys</h2>
        <ActionButton action={createKey} onError={setError}>
          Create a key
        </ActionButton>
        {created ? (
          <div class="notice notice-ok new-key" role="status">
            <p>
              <strong>New key — copy it now, it is not shown again:</strong>
            </p>
            <p>
              <code data-testid="new-key">{created.key}</code> <CopyButton text={created.key} />
            </p>
            <button type="button" class="secondary small" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        ) : null}
        {keys === null ? (
          <Loading />
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">key</th>
                  <th scope="col">created (UTC)</th>
                  <th scope="col">status</th>
                  <th scope="col">
                    <span class="visually-hidden">actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.map((k) => {
                  const mine = current.startsWith(k.prefix);
                  return (
                    <tr key={k.id} data-key-id={k.id}>
                      <td>
                        <code>{k.prefix}…</code> {mine ? <span class="muted small">(this session)</span> : null}
                      </td>
                      <td>{formatTime(k.created_at)}</td>
                      <td>{k.revoked_at ? `revoked ${formatTime(k.revoked_at)}` : "active"}</td>
                      <td>
                        {k.revoked_at ? null : (
                          <ActionButton class="danger small" label={`Revoke key ${k.prefix}`} action={() => revokeKey(k, mine)} onError={setError}>
                            Revoke
                          </ActionButton>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </div>
      <div class="card">
        <h2>Usage</h2>
        {usage ? (
          <>
            <dl class="facts wide">
              <div><dt>requests (30 days)</dt><dd>{formatInt(usage.totals.requests)}</dd></div>
              <div><dt>tokens (30 days)</dt><dd>{formatInt(usage.totals.total_tokens)}</dd></div>
              <div><dt>today</dt><dd>{formatInt(todayTokens)} / {formatInt(usage.limits.tokens_per_day)} tokens</dd></div>
              <div><dt>rate limit</dt><dd>{formatInt(usage.limits.requests_per_minute)} requests/min</dd></div>
            </dl>
            <UsageChart data={usage.data} to={today} />
          </>
        ) : (
          <Loading />
        )}
      </div>
    </section>
  );
}
