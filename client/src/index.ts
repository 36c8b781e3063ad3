export { LoraedgeClient } from "./client.js";
export type { ClientOptions, CallOptions, UploadOptions } from "./client.js";
export { LoraedgeError, errorFromResponse } from "./api-error.js";
export { sseData, sseJson } from "./sse.js";
export { adapterUploadForm, encodeForm, progressStream, CHAT_TEMPLATE_PART, CONFIG_PART, TOKENIZER_CONFIG_PART, WEIGHTS_PART } from "./upload-body.js";
export type { AdapterFiles, UploadProgress } from "./upload-body.js";
export type * from "./types.js";
