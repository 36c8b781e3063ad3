export * from "./queries.js";
