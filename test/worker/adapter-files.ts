// PEFT adapter files for the tiny test model, built with core (seeded, so reproducible).
import { createRng } from "#core/random/index";
import { randomLoraAdapter } from "#core/random/index";
import { writePeftAdapter } from "#core/peft/index";
import type { LoraAdapter } from "#core/lora/types";
import { MODEL } from "./fake-runner.js";

export function tinyAdapter(seed: number, rank: number, modules = ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]): LoraAdapter {
  const dims: Record<string, [number, number]> = { q_proj: [16, 16], v_proj: [16, 8], gate_proj: [16, 32], k_proj: [16, 8] };
  return randomLoraAdapter(
    createRng(seed),
    modules.map((m) => {
      const [inF, outF] = dims[m.slice(m.lastIndexOf(".") + 1)]!;
      return { module: m, rank, inFeatures: inF, outFeatures: outF, scale: 2 };
    }),
    { baseModel: MODEL },
  );
}

export function peftFiles(adapter: LoraAdapter): { config: string; weights: Uint8Array } {
  const files = writePeftAdapter(adapter);
  return { config: JSON.stringify(files.config), weights: files.safetensors };
}

export interface UploadFields {
  name?: string;
  base_model?: string;
  version?: string;
  visibility?: string;
  description?: string;
  tags?: string;
}

export function uploadForm(files: { config: string | null; weights: Uint8Array | null }, fields: UploadFields): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries({ base_model: MODEL, ...fields })) if (v !== undefined) form.set(k, v);
  if (files.config !== null) form.set("adapter_config.json", new File([files.config], "adapter_config.json", { type: "application/json" }));
  if (files.weights !== null) {
    form.set("adapter_model.safetensors", new File([files.weights as Uint8Array<ArrayBuffer>], "adapter_model.safetensors"));
  }
  return form;
}
