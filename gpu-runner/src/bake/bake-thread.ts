/**
 * Runs bake jobs off the event loop: a dense strategy on a large target is seconds of pure
 * JavaScript, which on the main thread would stall every stream the runner is serving.
 * One worker thread per job (spawned, used once, ended); its errors come back with their
 * class name so the caller can map BakeError/MixError to 4xx.
 */
import { Worker } from "node:worker_threads";
import { factorValues, HalfFactor, type LoraFactor } from "#core/lora/factor";
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

/**
 * The job as it crosses to the thread. Structured clone sends a typed array's ENTIRE backing buffer,
 * so a tensor that is a view into something larger (an F32 adapter's tensors are views of its whole
 * received blob; a pool's buffer) would send all of it: such a tensor goes as an exactly-sized copy
 * (`slice()`), transferred (the copy is the job's own, so moved, not copied again). A tensor that is
 * its whole buffer is cloned as is — never transferred: it belongs to the adapter cache. A 16-bit factor
 * (a class instance, which structured clone would turn into a plain object) goes widened to F32, in a
 * new array of its own, transferred.
 */
export function jobForThread(job: BakeJob): { job: BakeJob<Float32Array>; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const exactlySized = (x: LoraFactor): Float32Array => {
    if (x instanceof HalfFactor) {
      const values = factorValues(x);
      transfer.push(values.buffer as ArrayBuffer);
      return values;
    }
    if (x.byteOffset === 0 && x.byteLength === x.buffer.byteLength) return x;
    const copy = x.slice();
    transfer.push(copy.buffer);
    return copy;
  };
  const terms = job.terms.map(({ adapter, weight }) => ({
    weight,
    adapter: { ...adapter, modules: new Map([...adapter.modules].map(([k, m]) => [k, { ...m, a: exactlySized(m.a), b: exactlySized(m.b) }])) },
  }));
  return { job: { ...job, terms }, transfer };
}

type Reply = { ok: true; result: BakeJobResult } | { ok: false; kind: string; message: string };

/** Thread entry (this same file is the worker's script): tsx is registered so TypeScript and `#core/*` load. */
export const bakeOnWorkerThread: BakeJobRunner = (job: BakeJob) =>
  new Promise<BakeJobResult>((resolve, reject) => {
    const sent = jobForThread(job);
    const worker = new Worker(new URL("./bake-thread-main.ts", import.meta.url), {
      workerData: sent.job,
      transferList: sent.transfer,
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
