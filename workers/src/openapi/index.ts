export * from "./document.js";
export * from "./docs-page.js";
