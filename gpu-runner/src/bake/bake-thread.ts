/**
 * Runs bake jobs off the event loop: a dense strategy on a large target is seconds of pure
 * JavaScript, which on the main thread would stall every stream the runner is serving.
 * One worker thread per job (spawned, used once, ended); its errors come back with their
 * class name so the caller can map BakeError/MixError to 4xx.
 */
import { Worker } from "node:worker_threads";
import type { BakeJob, BakeJobResult, BakeJobRunner } from "./bake-job.js";

export class BakeThreadError extends Error {
  constructor(
    /** The class name of the error thrown in the thread (BakeError, MixError, …). */
    readonly kind: string,
    message: string,
  ) {
    super(message);
    this.name = kind;
  }
}

type Reply = { ok: true; result: BakeJobResult } | { ok: false; kind: string; message: string };

/** Thread entry (this same file is the worker's script): tsx is registered so TypeScript and `#core/*` load. */
export const bakeOnWorkerThread: BakeJobRunner = (job: BakeJob) =>
  new Promise<BakeJobResult>((resolve, reject) => {
    const worker = new Worker(new URL("./bake-thread-main.ts", import.meta.url), {
      workerData: job,
      execArgv: ["--import", "tsx"],
    });
    let settled = false;
    worker.once("message", (reply: Reply) => {
      settled = true;
      if (reply.ok) resolve(reply.result);
      else reject(new BakeThreadError(reply.kind, reply.message));
      void worker.terminate();
    });
    worker.once("error", (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new Error(`bake thread exited with code ${code} before answering`));
      settled = true;
    });
  });
