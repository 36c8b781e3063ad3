import { z } from "@hono/zod-openapi";
import { bakeReportSchema, type BakeReportBody } from "#core/wire/bake";
import { isoTime } from "../util/time.js";
import type { AdapterWithOwner } from "./queries.js";
import { decodeTags } from "./refs.js";
import { STORED_SCALE_DESCRIPTION } from "./stored-numbers.js";

export const AdapterSchema = z
  .object({
    id: z.string().openapi({ example: "ad_3f2a9c0b1d4e5f607182" }),
    name: z.string().openapi({ example: "pirate-speak" }),
    version: z.string().openapi({ example: "1.0.0" }),
    owner: z.string().openapi({ description: "Owner tenant name", example: "acme" }),
    ref: z.string().openapi({ description: "`owner/name@version`, usable wherever an id is", example: "acme/pirate-speak@1.0.0" }),
    base_model: z.string().openapi({ example: "loraedge-tiny" }),
    rank: z.number().int().openapi({ description: "Largest module rank" }),
    alpha: z.number().openapi({ description: "lora_alpha of the config (when unknown: scale × rank)" }),
    scale: z.number().openapi({ description: STORED_SCALE_DESCRIPTION }),
    targets: z.array(z.string()).openapi({ description: "PEFT module paths the adapter modifies" }),
    dtype: z.string().openapi({ example: "F32" }),
    size_bytes: z.number().int(),
    sha256: z.string(),
    visibility: z.enum(["private", "public"]),
    description: z.string(),
    tags: z.array(z.string()),
    downloads: z.number().int(),
    uses: z.number().int().openapi({ description: "Completions served with this adapter in the mix" }),
    created_at: z.string(),
    chat_template: z.boolean().openapi({
      description:
        "Whether the adapter was uploaded with its own chat template (tokenizer_config.json or chat_template.jinja). A chat request whose mix is exactly this adapter is rendered with it; GET /v1/adapters/{id}/chat_template returns it.",
    }),
    bake: bakeReportSchema.nullable().openapi("BakeReport", {
      description:
        "For an adapter baked from a composition: strategy, rank, the SVD's discarded energy, and its fidelity to the exact mix measured on the base model by the runner that baked it (KL divergence, top-1 agreement on a fixed probe set). null for uploads.",
    }),
  })
  .openapi("Adapter");
export type AdapterJson = z.infer<typeof AdapterSchema>;

export function adapterJson(a: AdapterWithOwner): AdapterJson {
  return {
    id: a.id,
    name: a.name,
    version: a.version,
    owner: a.ownerName,
    ref: `${a.ownerName}/${a.name}@${a.version}`,
    base_model: a.baseModel,
    rank: a.rank,
    alpha: a.alpha,
    scale: a.scale,
    targets: JSON.parse(a.targets) as string[],
    dtype: a.dtype,
    size_bytes: a.sizeBytes,
    sha256: a.sha256,
    visibility: a.visibility,
    description: a.description,
    tags: decodeTags(a.tags),
    downloads: a.downloads,
    uses: a.uses,
    created_at: isoTime(a.createdAt),
    chat_template: a.hasChatTemplate,
    bake: a.bakeReport ? (JSON.parse(a.bakeReport) as BakeReportBody) : null,
  };
}
