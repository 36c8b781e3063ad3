/**
 * "How to call it" snippets with the real ids: curl, the `openai` JS and Python SDKs (the mix
 * goes in the request body's `adapters` extension; the SDKs pass unknown fields through:
 * `extra_body` in Python, a plain extra property in JS).
 */
export interface SnippetInput {
  /** The edge's origin, e.g. http://127.0.0.1:8787. */
  origin: string;
  model: string;
  adapters: Array<{ id: string; weight: number }>;
  prompt: string;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A curl command for exactly this JSON body on `path` (the key comes from $LORAEDGE_API_KEY). */
export function curlFor(origin: string, path: string, body: unknown): string {
  const stream = (body as { stream?: boolean })?.stream === true;
  return [
    `curl -s${stream ? "N" : ""} ${origin}${path}`,
    `  -H "authorization: Bearer $LORAEDGE_API_KEY"`,
    `  -H 'content-type: application/json'`,
    `  -d ${shellQuote(JSON.stringify(body))}`,
  ].join(" \\\n");
}

export function curlSnippet(s: SnippetInput): string {
  return curlFor(s.origin, "/v1/completions", { model: s.model, prompt: s.prompt, max_tokens: 32, adapters: s.adapters });
}

export function openaiJsSnippet(s: SnippetInput): string {
  return `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${s.origin}/v1", apiKey: process.env.LORAEDGE_API_KEY });
const completion = await client.completions.create({
  model: ${JSON.stringify(s.model)},
  prompt: ${JSON.stringify(s.prompt)},
  max_tokens: 32,
  // loraedge extension: the weighted mix of adapters
  adapters: ${JSON.stringify(s.adapters)},
});
console.log(completion.choices[0].text);`;
}

export function openaiPythonSnippet(s: SnippetInput): string {
  const adapters = s.adapters.map((a) => `{"id": ${JSON.stringify(a.id)}, "weight": ${a.weight}}`).join(", ");
  return `import os
from openai import OpenAI

client = OpenAI(base_url="${s.origin}/v1", api_key=os.environ["LORAEDGE_API_KEY"])
completion = client.completions.create(
    model=${JSON.stringify(s.model)},
    prompt=${JSON.stringify(s.prompt)},
    max_tokens=32,
    extra_body={"adapters": [${adapters}]},  # loraedge extension: the weighted mix
)
print(completion.choices[0].text)`;
}
