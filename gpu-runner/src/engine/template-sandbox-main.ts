/** The sandbox process of template-sandbox.ts: renders one request at a time, compiled templates kept (≤ 32). */
import { chatTemplateFromSpec, type ChatTemplate } from "#core/chat/chat-template";
import type { SandboxReply, SandboxRequest } from "./template-sandbox.js";

const compiled = new Map<string, ChatTemplate>();

process.on("disconnect", () => process.exit(0)); // the runner is gone
process.on("message", (req: SandboxRequest) => {
  let reply: SandboxReply;
  try {
    const key = JSON.stringify(req.spec);
    let template = compiled.get(key);
    if (!template) {
      template = chatTemplateFromSpec(req.spec, "adapter");
      if (compiled.size >= 32) compiled.delete(compiled.keys().next().value!);
      compiled.set(key, template);
    }
    const text = template.render(req.messages);
    reply =
      text.length > req.maxOutputChars
        ? { id: req.id, ok: false, message: `the rendered prompt is ${text.length} characters, over the limit of ${req.maxOutputChars}` }
        : { id: req.id, ok: true, text };
  } catch (e) {
    reply = { id: req.id, ok: false, message: e instanceof Error ? e.message : String(e) };
  }
  process.send!(reply);
});
