/**
 * Length limits of the free-form strings the API accepts (400 beyond), so that no field can
 * carry megabytes into D1, logs or a runner. Prompt text is bounded by the model's context
 * instead (./prompt-bounds.ts).
 */

/** An adapter id or `owner/name@version` reference (64 + 1 + 64 + 1 + 64 with room to spare). */
export const MAX_REF_CHARS = 256;
/** A model id. */
export const MAX_MODEL_ID_CHARS = 128;
/** A semver version string. */
export const MAX_VERSION_CHARS = 64;
/** The raw comma-separated `tags` field (16 tags of at most 32 characters, commas, spaces). */
export const MAX_TAGS_FIELD_CHARS = 1024;
/** An adapter description. */
export const MAX_DESCRIPTION_CHARS = 4000;
/** The OpenAI `user` field, a chat message `name`. */
export const MAX_USER_CHARS = 256;
/** One stop sequence. */
export const MAX_STOP_CHARS = 256;
/** An opaque listing cursor. */
export const MAX_CURSOR_CHARS = 512;
/**
 * Largest JSON body of an inference call. A memory bound only: any prompt the runners can take
 * is far smaller (their own body limit is 16 MiB; the context check refuses long prompts).
 */
export const MAX_INFERENCE_BODY_BYTES = 32 * 1024 * 1024;
