/**
 * The runner's view of ONNX Runtime: plain host tensors in, plain host tensors out. The
 * implementations (node-backend.ts, web-backend.ts) are the only files in the repository that
 * import onnxruntime-node / onnxruntime-web.
 */
export type BackendName = "node" | "web";

export type HostTensor =
  | { type: "float32"; data: Float32Array; dims: readonly number[] }
  | { type: "int64"; data: BigInt64Array; dims: readonly number[] }
  | { type: "int32"; data: Int32Array; dims: readonly number[] }
  /** IEEE binary16 bits (merging fp16 weights; the model's own inputs and outputs are float32). */
  | { type: "float16"; data: Uint16Array; dims: readonly number[] };

export interface SessionOptions {
  /** Weight files the graph refers to as external data (`location` → bytes). Copied by ORT. */
  externalData?: { path: string; data: Uint8Array }[];
  /** Intra-op threads (default: ORT's choice). */
  threads?: number;
  /** onnxruntime-node execution provider: "cpu" (default), "cuda", "webgpu". Ignored by "web" (wasm). */
  executionProvider?: string;
  /**
   * Whether the intra-op pool's threads spin after a parallel section waiting for more work (ORT's
   * default: yes). false: they sleep at once, so they take no core from work that runs between two
   * runs (onnxruntime-node: session config "session.intra_op.allow_spinning" = "0").
   */
  spinning?: boolean;
  /** Graph optimisation level (default "all"). */
  optimization?: "disabled" | "basic" | "extended" | "all";
}

export interface Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** One run. `fetches` limits the outputs (default: all). */
  run(feeds: Record<string, HostTensor>, fetches?: readonly string[]): Promise<Record<string, HostTensor>>;
  /**
   * One run that writes the named outputs into the given tensors (e.g. views into a larger buffer),
   * and fetches only those. onnxruntime-node writes in place; a backend that hands back its own
   * buffer has it copied in. Returns the same tensors.
   */
  runInto(feeds: Record<string, HostTensor>, outputs: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  createSession(model: Uint8Array, options?: SessionOptions): Promise<Session>;
}

/** Product of dims. */
export function numel(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A host tensor of `type`; the data must hold exactly numel(dims) values. */
export function hostTensor<T extends HostTensor>(type: T["type"], data: T["data"], dims: readonly number[]): T {
  if (data.length !== numel(dims)) throw new Error(`${type} tensor: ${data.length} values for dims [${dims.join(", ")}]`);
  return { type, data, dims } as T;
}

type TensorOf<K extends HostTensor["type"]> = Extract<HostTensor, { type: K }>;
export const float32 = (data: Float32Array, dims: readonly number[]) => hostTensor<TensorOf<"float32">>("float32", data, dims);
export const int64 = (data: BigInt64Array, dims: readonly number[]) => hostTensor<TensorOf<"int64">>("int64", data, dims);
export const int32 = (data: Int32Array, dims: readonly number[]) => hostTensor<TensorOf<"int32">>("int32", data, dims);
export const float16 = (data: Uint16Array, dims: readonly number[]) => hostTensor<TensorOf<"float16">>("float16", data, dims);

/** Narrows a run output to float32, with a precise error otherwise. */
export function expectFloat32(t: HostTensor | undefined, what: string): { data: Float32Array; dims: readonly number[] } {
  if (!t) throw new Error(`missing output ${what}`);
  if (t.type !== "float32") throw new Error(`output ${what} is ${t.type}, expected float32`);
  return t;
}
