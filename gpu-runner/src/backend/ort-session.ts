/**
 * Shared glue between the runner's Backend interface and an onnxruntime-common style module
 * (onnxruntime-node and onnxruntime-web expose the same InferenceSession/Tensor API).
 */
import type { InferenceSession as OrtSession, Tensor as OrtTensor } from "onnxruntime-common";
import type { Backend, BackendName, HostTensor, Session, SessionOptions } from "./backend.js";

export interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options?: OrtSession.SessionOptions): Promise<OrtSession> };
  Tensor: new (type: "float32" | "int64" | "int32" | "float16", data: Float32Array | BigInt64Array | Int32Array | Uint16Array, dims: readonly number[]) => OrtTensor;
}

export function toHost(t: OrtTensor): HostTensor {
  switch (t.type) {
    case "float32":
      return { type: "float32", data: t.data as Float32Array, dims: t.dims };
    case "int64":
      return { type: "int64", data: t.data as BigInt64Array, dims: t.dims };
    case "int32":
      return { type: "int32", data: t.data as Int32Array, dims: t.dims };
    case "float16":
      return { type: "float16", data: t.data as Uint16Array, dims: t.dims };
    default:
      throw new Error(`unsupported output tensor type ${t.type}`);
  }
}

/**
 * `writesPreallocatedOutputs`: the module's run() writes CPU outputs passed in `fetches` in place
 * (onnxruntime-node does; onnxruntime-web 1.x hands the tensor back unwritten, so its outputs are copied in).
 */
export function ortBackend(
  name: BackendName,
  ort: OrtModule,
  executionProviders: (options: SessionOptions) => OrtSession.SessionOptions["executionProviders"],
  writesPreallocatedOutputs = false,
): Backend {
  return {
    name,
    async createSession(model: Uint8Array, options: SessionOptions = {}): Promise<Session> {
      const ep = options.executionProvider ?? "cpu";
      const sessionOptions: OrtSession.SessionOptions = {
        executionProviders: executionProviders(options),
        graphOptimizationLevel: options.optimization ?? "all",
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
        ...(options.externalData ? { externalData: options.externalData.map((e) => ({ path: e.path, data: e.data })) } : {}),
        ...(options.spinning === false ? { extra: { session: { intra_op: { allow_spinning: "0" } } } } : {}),
      };
      let session: OrtSession;
      try {
        session = await ort.InferenceSession.create(model, sessionOptions);
      } catch (err) {
        throw new Error(`onnxruntime (${name} backend${name === "node" ? `, ${ep} EP` : ""}) could not create the session: ${(err as Error).message}`, { cause: err });
      }
      const toOrt = (tensors: Record<string, HostTensor>) => {
        const ortTensors: Record<string, OrtTensor> = {};
        for (const [key, t] of Object.entries(tensors)) ortTensors[key] = new ort.Tensor(t.type, t.data, t.dims);
        return ortTensors;
      };
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        async run(feeds, fetches) {
          const ortFeeds = toOrt(feeds);
          const results = fetches ? await session.run(ortFeeds, fetches as string[]) : await session.run(ortFeeds);
          const out: Record<string, HostTensor> = {};
          for (const [key, t] of Object.entries(results)) out[key] = toHost(t);
          return out;
        },
        async runInto(feeds, outputs) {
          if (writesPreallocatedOutputs) {
            await session.run(toOrt(feeds), toOrt(outputs));
            return outputs;
          }
          const results = await session.run(toOrt(feeds), Object.keys(outputs));
          for (const [key, want] of Object.entries(outputs)) {
            const got = results[key];
            if (!got || got.type !== want.type || got.data.length !== want.data.length) throw new Error(`output ${key} is not a ${want.type} tensor of ${want.data.length} values`);
            (want.data as Float32Array).set(got.data as Float32Array);
          }
          return outputs;
        },
        async release() {
          await session.release();
        },
      };
    },
  };
}
