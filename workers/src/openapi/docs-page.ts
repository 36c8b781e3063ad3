/**
 * GET /docs: a self-contained HTML page (no CDN, no external assets) that fetches
 * /openapi.json and renders every operation: method, path, summary, parameters, request body
 * and response schemas, grouped by tag.
 */
export const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>loraedge API</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
  header { background: #222; color: #fff; padding: 1rem 2rem; }
  header h1 { margin: 0; font-size: 1.4rem; }
  main { max-width: 980px; margin: 0 auto; padding: 1rem 2rem 4rem; }
  h2 { border-bottom: 1px solid #ddd; padding-bottom: .3rem; margin-top: 2rem; text-transform: capitalize; }
  details { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: .5rem 0; }
  summary { cursor: pointer; padding: .5rem .8rem; display: flex; gap: .8rem; align-items: baseline; }
  .m { font: 600 12px monospace; padding: 2px 6px; border-radius: 3px; color: #fff; min-width: 52px; text-align: center; }
  .get { background: #2b7de9; } .post { background: #2f9e44; } .put { background: #e67700; }
  .patch { background: #9c36b5; } .delete { background: #e03131; }
  code, pre { font: 13px ui-monospace, monospace; }
  pre { background: #f3f3f3; padding: .6rem; overflow-x: auto; border-radius: 4px; }
  .body { padding: 0 1rem 1rem; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; border-bottom: 1px solid #eee; padding: .25rem .4rem; vertical-align: top; }
  .lock { color: #888; font-size: 12px; }
</style>
</head>
<body>
<header><h1>loraedge edge API</h1><div id="desc"></div></header>
<main>
<p>Machine-readable document: <a href="/openapi.json">/openapi.json</a>. Authenticate with
<code>Authorization: Bearer &lt;api key&gt;</code>. Errors are <code>{"error": {"type", "message"}}</code>.</p>
<div id="ops">Loading…</div>
</main>
<script>
(async () => {
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const doc = await (await fetch("/openapi.json")).json();
  document.getElementById("desc").textContent = doc.info.description || "";
  const schemas = (doc.components && doc.components.schemas) || {};
  const deref = (s, depth = 0) => {
    if (!s || depth > 6) return s;
    if (s.$ref) return deref(schemas[s.$ref.split("/").pop()], depth + 1);
    if (Array.isArray(s)) return s.map((x) => deref(x, depth + 1));
    if (typeof s === "object") {
      const o = {};
      for (const [k, v] of Object.entries(s)) o[k] = deref(v, depth + 1);
      return o;
    }
    return s;
  };
  const byTag = {};
  for (const [path, ops] of Object.entries(doc.paths || {})) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = (op.tags && op.tags[0]) || "other";
      (byTag[tag] = byTag[tag] || []).push({ path, method, op });
    }
  }
  let html = "";
  for (const [tag, list] of Object.entries(byTag)) {
    html += "<h2>" + esc(tag) + "</h2>";
    for (const { path, method, op } of list) {
      html += "<details><summary><span class='m " + method + "'>" + method.toUpperCase() + "</span><code>" + esc(path) +
        "</code><span>" + esc(op.summary) + "</span>" + (op.security && op.security.length ? "<span class='lock'>🔒 " +
        esc(Object.keys(op.security[0])[0]) + "</span>" : "") + "</summary><div class='body'>";
      if (op.description) html += "<p>" + esc(op.description) + "</p>";
      if (op.parameters && op.parameters.length) {
        html += "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th></tr>";
        for (const p of op.parameters) {
          html += "<tr><td><code>" + esc(p.name) + "</code></td><td>" + esc(p.in) + "</td><td>" + (p.required ? "yes" : "") +
            "</td><td><code>" + esc(JSON.stringify(deref(p.schema))) + "</code>" + (p.description ? "<br>" + esc(p.description) : "") + "</td></tr>";
        }
        html += "</table>";
      }
      if (op.requestBody) {
        for (const [type, c] of Object.entries(op.requestBody.content || {})) {
          html += "<h4>Request body <code>" + esc(type) + "</code></h4><pre>" + esc(JSON.stringify(deref(c.schema), null, 2)) + "</pre>";
        }
      }
      html += "<h4>Responses</h4>";
      for (const [status, r] of Object.entries(op.responses || {})) {
        html += "<p><b>" + esc(status) + "</b> " + esc(r.description) + "</p>";
        if (String(status).startsWith("2") && r.content) {
          for (const [type, c] of Object.entries(r.content)) {
            html += "<pre>" + esc(type) + "\\n" + esc(JSON.stringify(deref(c.schema), null, 2)) + "</pre>";
          }
        }
      }
      html += "</div></details>";
    }
  }
  document.getElementById("ops").innerHTML = html;
})().catch((e) => { document.getElementById("ops").textContent = "Could not load /openapi.json: " + e; });
</script>
</body>
</html>
`;
