import type { AdapterUploadFields } from "./types.js";

/** Multipart part names of POST /v1/adapters (PEFT's file names). */
export const CONFIG_PART = "adapter_config.json";
export const WEIGHTS_PART = "adapter_model.safetensors";
export const TOKENIZER_CONFIG_PART = "tokenizer_config.json";
export const CHAT_TEMPLATE_PART = "chat_template.jinja";

/** The files of a PEFT adapter folder: the two PEFT files, and optionally the adapter's own chat template. */
export interface AdapterFiles {
  /** adapter_config.json: its text, its parsed JSON, or the file. */
  config: string | Record<string, unknown> | Blob;
  /** adapter_model.safetensors bytes or the file. */
  weights: Uint8Array | Blob;
  /** Optional tokenizer_config.json (its chat_template, bos_token, eos_token are kept): text, parsed JSON, or the file. */
  tokenizerConfig?: string | Record<string, unknown> | Blob;
  /** Optional chat_template.jinja (wins over tokenizer_config.json's chat_template): text or the file. */
  chatTemplate?: string | Blob;
}

const jsonPart = (value: string | Record<string, unknown> | Blob): Blob =>
  value instanceof Blob ? value : new Blob([typeof value === "string" ? value : JSON.stringify(value)], { type: "application/json" });

export interface UploadProgress {
  /** Body bytes handed to the network so far. */
  loaded: number;
  /** Whole body (multipart framing included). */
  total: number;
}

/**
 * The multipart form of POST /v1/adapters. Exported so that a browser can send it with
 * XMLHttpRequest (whose `upload.onprogress` reports real progress over HTTP/1.1).
 */
export function adapterUploadForm(files: AdapterFiles, fields: AdapterUploadFields): FormData {
  const form = new FormData();
  form.set("name", fields.name);
  form.set("base_model", fields.base_model);
  if (fields.version !== undefined) form.set("version", fields.version);
  if (fields.visibility !== undefined) form.set("visibility", fields.visibility);
  if (fields.description !== undefined) form.set("description", fields.description);
  if (fields.tags !== undefined) form.set("tags", Array.isArray(fields.tags) ? fields.tags.join(",") : fields.tags);
  form.set(CONFIG_PART, jsonPart(files.config), CONFIG_PART);
  const weights = files.weights instanceof Blob ? files.weights : new Blob([files.weights as Uint8Array<ArrayBuffer>]);
  form.set(WEIGHTS_PART, weights, WEIGHTS_PART);
  if (files.tokenizerConfig !== undefined) form.set(TOKENIZER_CONFIG_PART, jsonPart(files.tokenizerConfig), TOKENIZER_CONFIG_PART);
  if (files.chatTemplate !== undefined) {
    const template = files.chatTemplate instanceof Blob ? files.chatTemplate : new Blob([files.chatTemplate], { type: "text/plain" });
    form.set(CHAT_TEMPLATE_PART, template, CHAT_TEMPLATE_PART);
  }
  return form;
}

/** A form serialised once: its bytes and its `multipart/form-data; boundary=…` type. */
export async function encodeForm(form: FormData): Promise<{ bytes: Uint8Array<ArrayBuffer>; contentType: string }> {
  const encoded = new Response(form);
  const contentType = encoded.headers.get("content-type")!;
  return { bytes: new Uint8Array(await encoded.arrayBuffer()), contentType };
}

/**
 * A body stream over `bytes` in `chunkBytes` slices that reports each slice as it is pulled
 * (fetch pulls as the socket drains, so `loaded` follows what was sent).
 */
export function progressStream(
  bytes: Uint8Array,
  onProgress: (p: UploadProgress) => void,
  chunkBytes = 64 * 1024,
): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    start() {
      onProgress({ loaded: 0, total: bytes.length });
    },
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const slice = bytes.subarray(offset, Math.min(bytes.length, offset + chunkBytes));
      offset += slice.length;
      controller.enqueue(slice);
      onProgress({ loaded: offset, total: bytes.length });
    },
  });
}
