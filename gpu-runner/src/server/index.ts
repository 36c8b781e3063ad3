export { createRunnerApp } from "./app.js";
export type { RunnerAppDeps, RunnerState } from "./app.js";
export { hmacAuth } from "./hmac-auth.js";
export { RunnerMetrics } from "./metrics.js";
export { Exposition, Histogram } from "./prometheus.js";
