// Untrusted chat templates render on a thread with limits (template-sandbox.ts): equal to the
// in-process render, the template's own errors pass through, and a template that loops, eats
// memory or writes a huge prompt is stopped with a ChatTemplateError while the event loop stays free.
import { afterAll, describe, expect, it } from "vitest";
import { ChatTemplateError, chatTemplateFromSpec, type ChatTemplateSpec } from "#core/chat/chat-template";
import { TemplateSandbox } from "./template-sandbox.js";

const spec = (template: string): ChatTemplateSpec => ({ template, bos_token: "<s>", eos_token: "</s>" });
const messages = [
  { role: "system" as const, content: "be brief" },
  { role: "user" as const, content: "Hi there" },
];
const CHATML =
  "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

describe("TemplateSandbox", () => {
  const sandbox = new TemplateSandbox({ timeoutMs: 1500, maxOutputChars: 100_000, maxHeapMb: 64 });
  afterAll(() => sandbox.dispose());

  it("renders what the in-process template renders", async () => {
    expect(await sandbox.render(spec(CHATML), messages)).toBe(chatTemplateFromSpec(spec(CHATML), "adapter").render(messages));
    expect(await sandbox.render(spec("{{ bos_token }}{{ messages[1].content }}"), messages)).toBe("<s>Hi there");
  });

  it("passes the template's own errors through (raise_exception, parse errors)", async () => {
    await expect(sandbox.render(spec("{{ raise_exception('no system messages') }}"), messages)).rejects.toThrow(/no system messages/);
    await expect(sandbox.render(spec("{% for %}"), messages)).rejects.toBeInstanceOf(ChatTemplateError);
  });

  it("stops a template that only loops for longer conversations, and the event loop keeps running meanwhile", async () => {
    const bomb = spec("{% if messages|length > 1 %}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}{{ messages[0].content }}");
    expect(await sandbox.render(bomb, messages.slice(0, 1))).toBe("be brief");
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    const started = Date.now();
    await expect(sandbox.render(bomb, messages)).rejects.toThrow(/longer than 1500 ms/);
    clearInterval(ticker);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(ticks).toBeGreaterThan(10);
    // A fresh thread serves the next render.
    expect(await sandbox.render(spec(CHATML), messages)).toContain("<|im_start|>assistant");
  });

  it("refuses a rendered prompt over the output cap, and one that exhausts the sandbox's memory", async () => {
    await expect(sandbox.render(spec("{% for i in range(20000) %}0123456789{% endfor %}"), messages)).rejects.toThrow(/over the limit of 100000/);
    const hog = spec("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}");
    await expect(sandbox.render(hog, messages)).rejects.toBeInstanceOf(ChatTemplateError);
    // range() materialises its list: 10⁹ entries abort the sandbox process (not the runner).
    await expect(sandbox.render(spec("{% for i in range(1000000000) %}{% endfor %}"), messages)).rejects.toThrow(/stopped the sandbox process/);
    expect(await sandbox.render(spec("ok {{ messages|length }}"), messages)).toBe("ok 2");
  });

  it("runs renders one at a time in arrival order", async () => {
    const results = await Promise.all([1, 2, 3].map((n) => sandbox.render(spec(`{{ ${n} * 2 }}`), messages)));
    expect(results).toEqual(["2", "4", "6"]);
  });
});
