export { composeMix, mixAsAdapter, MixError } from "./compose-mix.js";
export type { MixAsAdapterOptions } from "./compose-mix.js";
