import { describe, expect, it } from "vitest";
import { pickPeftFiles } from "./pick-files.js";

const file = (name: string) => new File(["x"], name);

describe("pickPeftFiles", () => {
  it("takes a folder's tokenizer_config.json / chat_template.jinja as the adapter's chat template, never as its config", () => {
    const folder = ["tokenizer_config.json", "adapter_model.safetensors", "chat_template.jinja", "adapter_config.json", "special_tokens_map.json"].map(file);
    const picked = pickPeftFiles(folder);
    expect([picked.config?.name, picked.weights?.name, picked.tokenizerConfig?.name, picked.chatTemplate?.name]).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "tokenizer_config.json",
      "chat_template.jinja",
    ]);
    // Renamed config + a tokenizer_config.json: the only other .json is the config.
    const renamed = pickPeftFiles([file("my-config.json"), file("tokenizer_config.json"), file("w.safetensors")]);
    expect([renamed.config?.name, renamed.tokenizerConfig?.name, renamed.chatTemplate, renamed.problems]).toEqual(["my-config.json", "tokenizer_config.json", null, []]);
    expect(pickPeftFiles([file("adapter_config.json"), file("adapter_model.safetensors")])).toMatchObject({ tokenizerConfig: null, chatTemplate: null });
  });
});
