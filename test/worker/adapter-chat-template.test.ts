// An adapter's own chat template (#10): uploaded beside the PEFT files (tokenizer_config.json or
// chat_template.jinja), validated with the runner's Jinja implementation (a broken one is a 400
// with the template's message and nothing stored), shown as `chat_template: true`, and carried to
// the runner for a chat request whose mix is exactly that adapter (a 2-adapter mix: the model's).
import { describe, expect, it } from "vitest";
import { MAX_CHAT_TEMPLATE_BYTES } from "#core/chat/adapter-chat-template";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { MODEL, useFakeRunners } from "./fake-runner.js";
import { callJson, expectError, newTenant, r2Keys, rowCount, uploadAdapter } from "./helpers.js";

const runners = useFakeRunners();

const CHATML = "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + eos_token + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const tokenizerConfig = { chat_template: CHATML, bos_token: null, eos_token: { content: "<|im_end|>", lstrip: false }, model_max_length: 32768, added_tokens_decoder: {} };

/** An upload form with optional template parts. */
function formWith(seed: number, name: string, parts: { tokenizerConfig?: string; jinja?: string } = {}): FormData {
  const form = uploadForm(peftFiles(tinyAdapter(seed, 2)), { name });
  if (parts.tokenizerConfig !== undefined) form.set("tokenizer_config.json", new File([parts.tokenizerConfig], "tokenizer_config.json", { type: "application/json" }));
  if (parts.jinja !== undefined) form.set("chat_template.jinja", new File([parts.jinja], "chat_template.jinja"));
  return form;
}

describe("uploading an adapter with its own chat template", () => {
  it("stores tokenizer_config.json's template and special tokens; the record says chat_template: true, GET …/chat_template returns it", async () => {
    const t = await newTenant("acme");
    const up = await uploadAdapter(t.key, formWith(1, "chatty", { tokenizerConfig: JSON.stringify(tokenizerConfig) }));
    expect(up.status).toBe(201);
    expect(up.body.chat_template).toBe(true);
    expect((await callJson(`/v1/adapters/${up.body.id}`, { key: t.key })).body.chat_template).toBe(true);
    const listed = await callJson("/v1/adapters?owner=me", { key: t.key });
    expect(listed.body.data.map((a: { chat_template: boolean }) => a.chat_template)).toEqual([true]);
    const got = await callJson(`/v1/adapters/${encodeURIComponent("acme/chatty@1.0.0")}/chat_template`, { key: t.key });
    expect(got.status).toBe(200);
    expect(got.body).toEqual({ chat_template: CHATML, bos_token: null, eos_token: "<|im_end|>" });

    const plain = await uploadAdapter(t.key, formWith(2, "plain"));
    expect(plain.body.chat_template).toBe(false);
    expectError(await callJson(`/v1/adapters/${plain.body.id}/chat_template`, { key: t.key }), 404);
    // A tokenizer_config.json without a chat_template carries none.
    const noTemplate = await uploadAdapter(t.key, formWith(3, "tok-only", { tokenizerConfig: JSON.stringify({ eos_token: "</s>" }) }));
    expect(noTemplate.body.chat_template).toBe(false);
  });

  it("chat_template.jinja wins over tokenizer_config.json's chat_template; the special tokens still come from the config", async () => {
    const t = await newTenant("acme");
    const jinja = "{% for m in messages %}[{{ m.role }}] {{ m.content }}{{ eos_token }}{% endfor %}";
    const up = await uploadAdapter(t.key, formWith(1, "j", { tokenizerConfig: JSON.stringify(tokenizerConfig), jinja }));
    expect(up.status).toBe(201);
    expect((await callJson(`/v1/adapters/${up.body.id}/chat_template`, { key: t.key })).body).toEqual({ chat_template: jinja, bos_token: null, eos_token: "<|im_end|>" });
  });

  it("an Idempotency-Key retry with another template is a different upload (422), with the same one the first result", async () => {
    const t = await newTenant("acme");
    const send = (jinja: string) =>
      callJson("/v1/adapters", { key: t.key, method: "POST", body: formWith(1, "idem", { jinja }), headers: { "idempotency-key": "k-template" } });
    const first = await send("{{ messages[0].content }}");
    expect(first.status).toBe(201);
    expect((await send("{{ messages[0].content }}")).body.id).toBe(first.body.id);
    expectError(await send("[{{ messages[0].content }}]"), 422);
    expect(await rowCount("adapters")).toBe(1);
  });

  it("refuses a broken template with the template's message (400) or an oversized one (413), storing nothing", async () => {
    const t = await newTenant("acme");
    const refusals: [Parameters<typeof formWith>[2], number, RegExp][] = [
      [{ jinja: "{% for m in messages %}{{ m.content }}" }, 400, /chat template does not parse: .+/],
      [{ jinja: "{{ raise_exception('This adapter only takes system-first conversations') }}" }, 400, /fails on a one-message user conversation: This adapter only takes system-first conversations/],
      [{ jinja: "{{ messages[0].content.nope() }}" }, 400, /fails on a one-message user conversation: .+/],
      [{ jinja: "{% for message in message %}{{ message.content }}{% endfor %}" }, 400, /fails on a one-message user conversation: Expected iterable/],
      [{ jinja: "{% if add_generation_prompt %}assistant:{% endif %}" }, 400, /renders a prompt without the messages' content/],
      [{ tokenizerConfig: "{not json" }, 400, /tokenizer_config\.json is not valid JSON/],
      [{ tokenizerConfig: "[1, 2]" }, 400, /tokenizer_config\.json is not a JSON object/],
      [{ tokenizerConfig: JSON.stringify({ chat_template: CHATML, eos_token: 2 }) }, 400, /eos_token must be a string/],
      [{ tokenizerConfig: JSON.stringify({ chat_template: `{# ${"x".repeat(MAX_CHAT_TEMPLATE_BYTES)} #}{{ messages[0].content }}` }) }, 400, /larger than 65536 bytes/],
      [{ jinja: "x".repeat(MAX_CHAT_TEMPLATE_BYTES + 1) }, 413, /chat_template\.jinja is 65537 bytes; the limit is 65536 bytes/],
    ];
    for (const [parts, status, message] of refusals) {
      const r = await uploadAdapter(t.key, formWith(1, "broken", parts));
      expectError(r, status);
      expect(r.body.error.message).toMatch(message);
    }
    expect(await rowCount("adapters")).toBe(0);
    expect(await r2Keys()).toEqual([]);
  });
});

describe("chat requests carry the template of a single-adapter mix", () => {
  async function setup() {
    const t = await newTenant("acme");
    const chatty = (await uploadAdapter(t.key, formWith(1, "chatty", { tokenizerConfig: JSON.stringify(tokenizerConfig) }))).body;
    const plain = (await uploadAdapter(t.key, formWith(2, "plain"))).body;
    return { t, chatty, plain };
  }
  const messages = [{ role: "user", content: "Hi" }];
  const sentTemplate = (i: number) => runners.completions[i]!.body.chat_template;

  it("model = the adapter, adapters = [it], twice it, or a composition of it: the adapter's template goes to the runner", async () => {
    const { t, chatty } = await setup();
    const comp = await callJson("/v1/compositions", { key: t.key, json: { name: "solo", adapters: [{ id: chatty.id, weight: 0.5 }] } });
    const requests = [
      { model: "acme/chatty@1.0.0", messages },
      { model: MODEL, messages, adapters: [{ id: chatty.id, weight: 1 }] },
      { model: MODEL, messages, adapters: [{ id: chatty.id, weight: 0.5 }, { id: "acme/chatty", weight: 0.5 }] },
      { model: MODEL, messages, composition: comp.body.name },
    ];
    for (const [i, json] of requests.entries()) {
      expect((await callJson("/v1/chat/completions", { key: t.key, json })).status).toBe(200);
      expect(sentTemplate(i)).toEqual({ template: CHATML, bos_token: null, eos_token: "<|im_end|>" });
    }
  });

  it("a 2-adapter mix, an adapter without a template, the base model and text completions: no template (the runner uses the model's)", async () => {
    const { t, chatty, plain } = await setup();
    const requests: [string, object][] = [
      ["/v1/chat/completions", { model: "acme/chatty", messages, adapters: [{ id: plain.id, weight: 1 }] }],
      ["/v1/chat/completions", { model: "acme/plain", messages }],
      ["/v1/chat/completions", { model: MODEL, messages }],
      ["/v1/completions", { model: "acme/chatty", prompt: "Hi" }],
    ];
    for (const [i, [path, json]] of requests.entries()) {
      expect((await callJson(path, { key: t.key, json })).status).toBe(200);
      expect(sentTemplate(i)).toBeUndefined();
    }
    expect(chatty.chat_template).toBe(true);
  });

  it("a chat rendered by an adapter's template reserves the model's whole context from the daily budget (the template may add any text)", async () => {
    const t = await newTenant("tight", { tokens_per_day: 100 }); // < the test model's context (128)
    const chatty = (await uploadAdapter(t.key, formWith(3, "chatty", { tokenizerConfig: JSON.stringify(tokenizerConfig) }))).body;
    const plain = (await uploadAdapter(t.key, formWith(4, "plain"))).body;
    const refused = await callJson("/v1/chat/completions", { key: t.key, json: { model: MODEL, messages, max_tokens: 4, adapters: [{ id: chatty.id, weight: 1 }] } });
    expectError(refused, 429);
    expect(refused.body.error.message).toMatch(/up to 128 tokens/);
    expect(runners.completions).toHaveLength(0);
    // The same chat on the model's template, and a text completion through the templated adapter, reserve their estimate.
    expect((await callJson("/v1/chat/completions", { key: t.key, json: { model: MODEL, messages, max_tokens: 4, adapters: [{ id: plain.id, weight: 1 }] } })).status).toBe(200);
    expect((await callJson("/v1/completions", { key: t.key, json: { model: MODEL, prompt: "Hi", max_tokens: 4, adapters: [{ id: chatty.id, weight: 1 }] } })).status).toBe(200);
  });

  it("a client cannot send a template of its own: chat_template in the body is dropped like any unknown field, never forwarded", async () => {
    const { t } = await setup();
    const r = await callJson("/v1/chat/completions", { key: t.key, json: { model: MODEL, messages, chat_template: { template: "{{ 'pwned' }}", bos_token: null, eos_token: null } } });
    expect(r.status).toBe(200);
    expect(sentTemplate(0)).toBeUndefined();
  });
});
