/**
 * Fetches adapter files from the edge worker's internal routes, signed with the shared
 * secret (core/src/wire/hmac.ts): GET blob (safetensors bytes, header x-loraedge-sha256)
 * and GET config (adapter_config.json).
 */
import { edgeAdapterPaths, SHA256_HEADER } from "#core/wire/runner-api";
import { signRequest } from "#core/wire/hmac";
import { joinChunks, plainTarget, type ReceiveTarget } from "./receive-bytes.js";
import { EngineError } from "../engine/errors.js";

export interface AdapterFiles {
  configJson: string;
  safetensors: Uint8Array;
  /** The sha256 the edge announced for the blob (header), when it sent one. */
  announcedSha256: string | null;
}

/** Where adapters come from (the edge in production; tests may serve the same routes). */
export interface AdapterSource {
  fetchAdapter(id: string): Promise<AdapterFiles>;
}

export interface EdgeSourceOptions {
  baseUrl: string;
  secret: string;
  /** Per-file timeout (default 60 s). */
  timeoutMs?: number;
  /** Largest blob accepted, bytes (default 1 GiB): bigger ones are refused before or while reading. */
  maxBytes?: number;
}

/** Reads a body up to `max` bytes into the buffer `target` picks; throws as soon as it is longer. */
async function readLimited(response: Response, max: number, what: string, target: ReceiveTarget = plainTarget): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel();
    throw new EngineError("adapter_unavailable", `${what} is ${declared} bytes, over the runner's limit of ${max} bytes (RUNNER_ADAPTER_MAX_MB)`);
  }
  if (!response.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new EngineError("adapter_unavailable", `${what} is over the runner's limit of ${max} bytes (RUNNER_ADAPTER_MAX_MB)`);
    }
    chunks.push(value);
  }
  return joinChunks(chunks, total, target);
}

export class EdgeAdapterSource implements AdapterSource {
  constructor(private readonly options: EdgeSourceOptions) {}

  async fetchAdapter(id: string): Promise<AdapterFiles> {
    const paths = edgeAdapterPaths(id);
    const settled = await Promise.allSettled([this.get(id, paths.blob), this.get(id, paths.config)]);
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) {
      // Release the other response's connection rather than leaving its body to the GC.
      for (const r of settled) if (r.status === "fulfilled") await r.value.body?.cancel();
      throw failed.reason;
    }
    const [blob, config] = settled.map((r) => (r as PromiseFulfilledResult<Response>).value);
    const max = this.options.maxBytes ?? 2 ** 30;
    const [safetensors, configBytes] = await Promise.all([
      // Into a plain buffer: a WebAssembly Memory (`safetensorsTarget`, where the kernels work in place)
      // has only fresh pages, which cost more than the in-place scan or widening saves, while a freed
      // heap buffer's pages are recycled (bench case 6: receive + load, both placements).
      readLimited(blob, max, `the blob of adapter ${id}`),
      readLimited(config, 1 << 20, `the adapter_config.json of adapter ${id}`),
    ]);
    return {
      safetensors,
      configJson: new TextDecoder().decode(configBytes),
      announcedSha256: blob.headers.get(SHA256_HEADER),
    };
  }

  private async get(id: string, pathAndQuery: string): Promise<Response> {
    const url = new URL(pathAndQuery.replace(/^\//, ""), this.options.baseUrl.replace(/\/?$/, "/"));
    // Keep any base path of the edge URL: sign what is actually requested.
    const signedPath = url.pathname + url.search;
    const headers = await signRequest(this.options.secret, { method: "GET", pathAndQuery: signedPath });
    let response: Response;
    try {
      response = await fetch(url, { headers, signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000) });
    } catch (e) {
      throw new EngineError("adapter_unavailable", `fetching adapter ${id} from the edge failed: ${(e as Error).message}`);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      // The edge resolved the mix moments ago: the adapter was deleted since. The request's fault.
      throw new EngineError("not_found_error", `adapter ${id} no longer exists`);
    }
    if (!response.ok) {
      const detail = (await response.text()).slice(0, 300);
      throw new EngineError("adapter_unavailable", `the edge answered ${response.status} for adapter ${id} (${pathAndQuery}): ${detail}`);
    }
    return response;
  }
}
