import { adapterChatTemplate, MAX_CHAT_TEMPLATE_BYTES } from "#core/chat/adapter-chat-template";
import { ChatTemplateError, type ChatTemplateSpec } from "#core/chat/chat-template";
import { badRequest, payloadTooLarge } from "../errors/api-error.js";
import { MAX_DESCRIPTION_CHARS, MAX_MODEL_ID_CHARS, MAX_TAGS_FIELD_CHARS } from "../validation/string-bounds.js";
import { ADAPTER_NAME_RE, ADAPTER_NAME_RULE, isValidVersion, parseTags, VERSION_RULE } from "./refs.js";

export const CONFIG_PART = "adapter_config.json";
export const WEIGHTS_PART = "adapter_model.safetensors";
/** Optional: the adapter's tokenizer_config.json (its chat_template, bos_token, eos_token are kept). */
export const TOKENIZER_CONFIG_PART = "tokenizer_config.json";
/** Optional: the adapter's chat template as a file (wins over tokenizer_config.json's chat_template). */
export const CHAT_TEMPLATE_PART = "chat_template.jinja";
export const MAX_CONFIG_BYTES = 1024 * 1024;
export { MAX_CHAT_TEMPLATE_BYTES, MAX_DESCRIPTION_CHARS };

/**
 * Largest multipart body read for an upload whose weights may be up to `maxBytes`: the two
 * config parts, the template part, and 64 KiB of fields and framing on top.
 */
export const maxUploadBodyBytes = (maxBytes: number) => maxBytes + 2 * MAX_CONFIG_BYTES + MAX_CHAT_TEMPLATE_BYTES + 64 * 1024;

/** A parsed, field-validated upload (file contents not yet checked). */
export interface UploadForm {
  name: string;
  baseModel: string;
  version: string;
  visibility: "private" | "public";
  description: string;
  tags: string[];
  /** adapter_config.json parsed as JSON. */
  config: unknown;
  configText: string;
  /** adapter_model.safetensors bytes. */
  weights: Uint8Array<ArrayBuffer>;
  /** The adapter's own chat template (validated), from tokenizer_config.json / chat_template.jinja; null: none. */
  chatTemplate: ChatTemplateSpec | null;
}

function field(form: FormData, name: string): string | undefined {
  const v = form.get(name);
  if (v === null) return undefined;
  if (typeof v !== "string") throw badRequest(`field '${name}' must be a text field, not a file`);
  return v.trim();
}

/**
 * Reads the multipart form of POST /v1/adapters: the two PEFT file parts plus metadata
 * fields. 413 when the weights exceed `maxBytes` (checked on Content-Length first, so an
 * oversized body is refused before it is read; a body without Content-Length is capped by the
 * route's bodyLimit at maxUploadBodyBytes); 400 for anything missing or malformed.
 */
export async function readUploadForm(request: Request, maxBytes: number): Promise<UploadForm> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("multipart/form-data")) {
    throw badRequest(`expected multipart/form-data with '${CONFIG_PART}' and '${WEIGHTS_PART}' file parts`);
  }
  const length = Number(request.headers.get("content-length") ?? NaN);
  if (Number.isFinite(length) && length > maxUploadBodyBytes(maxBytes)) {
    throw payloadTooLarge(`upload of ${length} bytes exceeds the adapter size limit of ${maxBytes} bytes`);
  }
  let form: FormData;
  try {
    form = await request.formData();
  } catch (e) {
    throw badRequest(`malformed multipart body: ${e instanceof Error ? e.message : String(e)}`);
  }

  const name = field(form, "name");
  if (!name) throw badRequest("field 'name' is required");
  if (!ADAPTER_NAME_RE.test(name)) throw badRequest(`invalid name '${name.slice(0, 80)}': ${ADAPTER_NAME_RULE}`);
  const baseModel = field(form, "base_model");
  if (!baseModel) throw badRequest("field 'base_model' is required");
  if (baseModel.length > MAX_MODEL_ID_CHARS) throw badRequest(`field 'base_model' longer than ${MAX_MODEL_ID_CHARS} characters`);
  const version = field(form, "version") || "1.0.0";
  if (!isValidVersion(version)) throw badRequest(`invalid version '${version.slice(0, 80)}': expected ${VERSION_RULE}`);
  const visibility = field(form, "visibility") || "private";
  if (visibility !== "private" && visibility !== "public") {
    throw badRequest(`invalid visibility '${visibility}': 'private' or 'public'`);
  }
  const description = field(form, "description") ?? "";
  if (description.length > MAX_DESCRIPTION_CHARS) throw badRequest(`description longer than ${MAX_DESCRIPTION_CHARS} characters`);
  let tags: string[];
  const tagsField = field(form, "tags");
  if (tagsField !== undefined && tagsField.length > MAX_TAGS_FIELD_CHARS) throw badRequest(`field 'tags' longer than ${MAX_TAGS_FIELD_CHARS} characters`);
  try {
    tags = parseTags(tagsField);
  } catch (e) {
    throw badRequest((e as Error).message);
  }

  const configPart = form.get(CONFIG_PART);
  if (configPart === null) throw badRequest(`missing file part '${CONFIG_PART}'`);
  const configText = typeof configPart === "string" ? configPart : await configPart.text();
  if (configText.length > MAX_CONFIG_BYTES) throw payloadTooLarge(`${CONFIG_PART} larger than ${MAX_CONFIG_BYTES} bytes`);
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw badRequest(`${CONFIG_PART} is not valid JSON: ${(e as Error).message}`);
  }

  const weightsPart = form.get(WEIGHTS_PART);
  if (weightsPart === null) throw badRequest(`missing file part '${WEIGHTS_PART}'`);
  if (typeof weightsPart === "string") throw badRequest(`'${WEIGHTS_PART}' must be a file part`);
  if (weightsPart.size > maxBytes) {
    throw payloadTooLarge(`${WEIGHTS_PART} is ${weightsPart.size} bytes; the limit is ${maxBytes} bytes`);
  }
  const weights = new Uint8Array(await weightsPart.arrayBuffer());
  const chatTemplate = await readChatTemplateParts(form);
  return { name, baseModel, version, visibility, description, tags, config, configText, weights, chatTemplate };
}

/** An optional text part no larger than `maxBytes` (413 otherwise). */
async function optionalTextPart(form: FormData, name: string, maxBytes: number): Promise<string | undefined> {
  const part = form.get(name);
  if (part === null) return undefined;
  const size = typeof part === "string" ? new TextEncoder().encode(part).length : part.size;
  if (size > maxBytes) throw payloadTooLarge(`${name} is ${size} bytes; the limit is ${maxBytes} bytes`);
  return typeof part === "string" ? part : await part.text();
}

/**
 * The optional template parts: parsed and rendered on a probe conversation with core's
 * `adapterChatTemplate` (the same Jinja implementation as the runner); a broken template, or
 * one that refuses a single user message, is a 400 with the template's own message.
 */
async function readChatTemplateParts(form: FormData): Promise<ChatTemplateSpec | null> {
  const tokenizerConfigText = await optionalTextPart(form, TOKENIZER_CONFIG_PART, MAX_CONFIG_BYTES);
  const jinjaText = await optionalTextPart(form, CHAT_TEMPLATE_PART, MAX_CHAT_TEMPLATE_BYTES);
  try {
    return adapterChatTemplate({
      ...(tokenizerConfigText !== undefined ? { tokenizerConfigText } : {}),
      ...(jinjaText !== undefined ? { jinjaText } : {}),
    });
  } catch (e) {
    if (e instanceof ChatTemplateError) throw badRequest(e.message);
    throw e;
  }
}
