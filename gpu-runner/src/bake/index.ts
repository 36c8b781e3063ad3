export { RunnerBaker, type RunnerBakerOptions } from "./runner-baker.js";
export { bakeInline, runBakeJob, type BakeJob, type BakeJobResult, type BakeJobRunner } from "./bake-job.js";
export { bakeOnWorkerThread, BakeThreadError } from "./bake-thread.js";
export { measureFidelity, compareLogits, klDivergence } from "./fidelity.js";
export { DEFAULT_PROBE_SET, probeSequences, type ProbeSetSpec } from "./probe-set.js";
