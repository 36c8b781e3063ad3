export * from "./chat-template.js";
export * from "./adapter-chat-template.js";
