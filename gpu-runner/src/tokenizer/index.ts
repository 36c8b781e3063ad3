export * from "./byte-tokenizer.js";
export * from "./hf-tokenizer.js";
export * from "#core/chat/chat-template";
export * from "./max-bytes-per-token.js";
export * from "./stop-token-ids.js";
