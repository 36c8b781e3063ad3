export { composeMix, mixAsAdapter, MixError } from "./compose-mix.js";
export type { ComposeOptions, MixAsAdapterOptions } from "./compose-mix.js";
