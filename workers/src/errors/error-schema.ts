import { z } from "@hono/zod-openapi";
import { ERROR_TYPES, type ErrorType } from "#core/wire/errors";

export const ErrorSchema = z
  .object({
    error: z.object({
      type: z
        .enum(Object.keys(ERROR_TYPES) as [ErrorType, ...ErrorType[]])
        .openapi({ example: "not_found_error", description: "One type of the shared error vocabulary (core/src/wire/errors.ts); it fixes the status." }),
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
    502: "An adapter could not be loaded by the runner (adapter_unavailable, adapter_integrity_error), or a runner answered garbage",
    503: "No healthy runner / dependency unavailable",
    504: "No runner answered in time",
  };
  const out = {} as Record<S, { description: string; content: typeof errorContent }>;
  for (const s of statuses) out[s] = { description: descriptions[s] ?? "Error", content: errorContent };
  return out;
}
