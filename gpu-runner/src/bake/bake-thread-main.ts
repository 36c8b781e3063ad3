/** Worker-thread script of bake-thread.ts: runs one bake job and posts the result (buffers transferred). */
import { parentPort, workerData } from "node:worker_threads";
import { runBakeJob, type BakeJob } from "./bake-job.js";

const job = workerData as BakeJob;
try {
  const result = runBakeJob(job);
  parentPort!.postMessage({ ok: true, result }, [result.safetensors.buffer as ArrayBuffer]);
} catch (e) {
  const err = e as Error;
  parentPort!.postMessage({ ok: false, kind: err?.name ?? "Error", message: err?.message ?? String(e) });
}
