export * from "./catalog.js";
export * from "./config.js";
export * from "./dispatch.js";
export * from "./health.js";
export * from "./rendezvous.js";
export * from "./signed-fetch.js";
