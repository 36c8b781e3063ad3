/**
 * Fetches adapter files from the edge worker's internal routes, signed with the shared
 * secret (core/src/wire/hmac.ts): GET blob (safetensors bytes, header x-loraedge-sha256)
 * and GET config (adapter_config.json).
 */
import { edgeAdapterPaths, SHA256_HEADER } from "../../../core/src/wire/runner-api.js";
import { signRequest } from "../../../core/src/wire/hmac.js";
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
}

export class EdgeAdapterSource implements AdapterSource {
  constructor(private readonly options: EdgeSourceOptions) {}

  async fetchAdapter(id: string): Promise<AdapterFiles> {
    const paths = edgeAdapterPaths(id);
    const [blob, config] = await Promise.all([this.get(id, paths.blob), this.get(id, paths.config)]);
    return {
      safetensors: new Uint8Array(await blob.arrayBuffer()),
      configJson: await config.text(),
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
      throw new EngineError(502, "adapter_unavailable", `fetching adapter ${id} from the edge failed: ${(e as Error).message}`);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      throw new EngineError(404, "adapter_unavailable", `the edge does not know adapter ${id} (${pathAndQuery} → 404)`);
    }
    if (!response.ok) {
      const detail = (await response.text()).slice(0, 300);
      throw new EngineError(502, "adapter_unavailable", `the edge answered ${response.status} for adapter ${id} (${pathAndQuery}): ${detail}`);
    }
    return response;
  }
}
