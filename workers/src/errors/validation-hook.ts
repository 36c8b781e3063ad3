import type { Context } from "hono";
import { ApiError } from "./api-error.js";

interface ZodIssueLike {
  path: PropertyKey[];
  message: string;
}

/** Formats zod issues as one readable line: `field.path: message; …`. */
export function formatIssues(issues: readonly ZodIssueLike[]): string {
  return issues
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/** defaultHook of the OpenAPIHono apps: validation failures become 400 invalid_request_error. */
export function validationHook(
  result: { success: true } | { success: false; error: { issues: readonly ZodIssueLike[] }; target?: string },
  _c: Context,
): void {
  if (!result.success) {
    const where = result.target ? `invalid ${result.target}: ` : "";
    throw new ApiError("invalid_request_error", where + formatIssues(result.error.issues));
  }
}
