import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../app-env.js";
import { payloadTooLarge } from "../errors/api-error.js";
import { MAX_INFERENCE_BODY_BYTES } from "./string-bounds.js";

/** Inference bodies are read only up to MAX_INFERENCE_BODY_BYTES (413 beyond), before JSON parsing. */
export const inferenceBodyLimit: MiddlewareHandler<AppEnv> = bodyLimit({
  maxSize: MAX_INFERENCE_BODY_BYTES,
  onError: () => {
    throw payloadTooLarge(`request body exceeds ${MAX_INFERENCE_BODY_BYTES} bytes`);
  },
});
