import { z } from "@hono/zod-openapi";

export const ErrorSchema = z
  .object({
    error: z.object({
      type: z.string().openapi({ example: "not_found_error" }),
      message: z.string().openapi({ example: "adapter not found" }),
    }),
  })
  .openapi("Error");

const errorContent = { "application/json": { schema: ErrorSchema } };

/** OpenAPI response entries for the listed error statuses. */
export function errorResponses<S extends number>(
  ...statuses: S[]
): Record<S, { description: string; content: typeof errorContent }> {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Missing or invalid API key",
    403: "Not allowed",
    404: "Not found (or not visible to the caller)",
    409: "Conflict",
    413: "Payload too large",
    422: "Semantically invalid (incompatible adapter, wrong base model, …)",
    429: "Rate or token limit exceeded; see Retry-After",
    502: "Runner answered with an error",
    503: "No healthy runner / dependency unavailable",
  };
  const out = {} as Record<S, { description: string; content: typeof errorContent }>;
  for (const s of statuses) out[s] = { description: descriptions[s] ?? "Error", content: errorContent };
  return out;
}
