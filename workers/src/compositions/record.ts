import { z } from "@hono/zod-openapi";
import { isoTime } from "../util/time.js";
import type { CompositionWithEntries } from "./queries.js";

export const CompositionSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    base_model: z.string(),
    adapters: z.array(z.object({ id: z.string(), ref: z.string(), weight: z.number() })),
    created_at: z.string(),
  })
  .openapi("Composition");
/** A composition row (with its entries) as the API answers it. */
export function compositionJson(c: CompositionWithEntries): z.infer<typeof CompositionSchema> {
  return {
    id: c.id,
    name: c.name,
    base_model: c.baseModel,
    adapters: c.entries.map((e) => ({ id: e.adapterId, ref: e.ref, weight: e.weight })),
    created_at: isoTime(c.createdAt),
  };
}
