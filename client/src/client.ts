import { errorFromResponse, LoraedgeError } from "./api-error.js";
import { sseJson } from "./sse.js";
import type {
  Adapter,
  AdapterDeleted,
  AdapterPage,
  AdapterQuery,
  AdapterUpdate,
  AdapterUploadFields,
  ApiKey,
  BakedAdapter,
  BakeRequest,
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  Completion,
  CompletionRequest,
  Composition,
  CompositionCreate,
  CompositionDeleted,
  CreatedApiKey,
  List,
  Model,
  ModelDetail,
  UsageReport,
} from "./types.js";
import { adapterUploadForm, encodeForm, progressStream, type AdapterFiles, type UploadProgress } from "./upload-body.js";

export interface ClientOptions {
  /** The edge, e.g. `http://127.0.0.1:8787` (a trailing slash is ignored). */
  baseUrl: string;
  /** A tenant's API key (`Authorization: Bearer …`). */
  apiKey?: string;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /**
   * Send uploads as a streamed body so `onProgress` follows the bytes sent. Default: true
   * outside a browser page. Browsers stream request bodies only over HTTP/2+, so there the
   * default is false (progress jumps 0 → 100 %; use `adapterUploadForm` with XMLHttpRequest for
   * real browser progress).
   */
  streamUploads?: boolean;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface UploadOptions extends CallOptions {
  onProgress?: (progress: UploadProgress) => void;
}

interface RequestInit_ extends CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  body?: RequestInit["body"];
  headers?: Record<string, string>;
}

/** `owner/name@version` or an id, as one path segment. */
const seg = (idOrRef: string) => encodeURIComponent(idOrRef);

/**
 * A typed client of the loraedge public API over `fetch`: no Node or browser specifics, so
 * the web app and the CLI share it. Every method resolves with the API's JSON, or rejects
 * with a LoraedgeError carrying the API's status, type and message.
 */
export class LoraedgeClient {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly streamUploads: boolean;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.streamUploads = options.streamUploads ?? typeof (globalThis as { document?: unknown }).document === "undefined";
  }

  /** One call; resolves with the 2xx Response, rejects with a LoraedgeError otherwise. */
  async request(method: string, path: string, init: RequestInit_ = {}): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [k, v] of Object.entries(init.query ?? {})) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: "application/json", ...init.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(init.json);
    }
    const streamed = typeof ReadableStream !== "undefined" && body instanceof ReadableStream;
    let res: Response;
    try {
      res = await this.fetchImpl(url, {
        method,
        headers,
        body,
        signal: init.signal,
        ...(streamed ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (e) {
      if ((e as Error)?.name === "AbortError") throw e;
      const cause = (e as { cause?: { message?: string } })?.cause?.message ?? (e as Error)?.message ?? String(e);
      throw new LoraedgeError(0, "network_error", `cannot reach ${this.baseUrl}: ${cause}`);
    }
    if (!res.ok) throw await errorFromResponse(res);
    return res;
  }

  private async json<T>(method: string, path: string, init?: RequestInit_): Promise<T> {
    const res = await this.request(method, path, init);
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new LoraedgeError(res.status, "invalid_response", `expected JSON from ${method} ${path}, got: ${text.slice(0, 200)}`, res.headers.get("x-request-id"));
    }
  }

  private async *events<T>(path: string, body: unknown, options: CallOptions): AsyncGenerator<T> {
    const res = await this.request("POST", path, { json: body, signal: options.signal, headers: { accept: "text/event-stream" } });
    if (!res.body) throw new LoraedgeError(res.status, "invalid_response", `${path} answered without a body`);
    yield* sseJson<T>(res.body, res.headers.get("x-request-id"));
  }

  private async *allAdapters(query: AdapterQuery, options: CallOptions): AsyncGenerator<Adapter> {
    let cursor = query.cursor;
    do {
      const page = await this.adapters.list({ ...query, cursor }, options);
      yield* page.data;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  readonly adapters = {
    /** One page of public adapters plus the caller's own. */
    list: (query: AdapterQuery = {}, options: CallOptions = {}) =>
      this.json<AdapterPage>("GET", "/v1/adapters", { query: { ...query }, ...options }),
    /** Every adapter matching `query`, following `next_cursor` page by page. */
    iterate: (query: AdapterQuery = {}, options: CallOptions = {}) => this.allAdapters(query, options),
    get: (idOrRef: string, options: CallOptions = {}) => this.json<Adapter>("GET", `/v1/adapters/${seg(idOrRef)}`, options),
    /** adapter_config.json exactly as uploaded (text). */
    config: async (idOrRef: string, options: CallOptions = {}) =>
      (await this.request("GET", `/v1/adapters/${seg(idOrRef)}/config`, options)).text(),
    /** adapter_model.safetensors bytes, with the sha256 the edge recorded (counts a download). */
    download: async (idOrRef: string, options: CallOptions = {}) => {
      const res = await this.request("GET", `/v1/adapters/${seg(idOrRef)}/download`, { ...options, headers: { accept: "application/octet-stream" } });
      return { bytes: new Uint8Array(await res.arrayBuffer()), sha256: res.headers.get("x-loraedge-sha256") };
    },
    /** Uploads a PEFT adapter (the two files + metadata). */
    upload: async (files: AdapterFiles, fields: AdapterUploadFields, options: UploadOptions = {}) => {
      const { bytes, contentType } = await encodeForm(adapterUploadForm(files, fields));
      const onProgress = options.onProgress;
      let body: RequestInit["body"] = bytes;
      if (onProgress && this.streamUploads) body = progressStream(bytes, onProgress);
      else onProgress?.({ loaded: 0, total: bytes.length });
      const headers = { "content-type": contentType, "content-length": String(bytes.length) };
      const res = await this.request("POST", "/v1/adapters", { body, headers, signal: options.signal });
      if (onProgress && !this.streamUploads) onProgress({ loaded: bytes.length, total: bytes.length });
      return (await res.json()) as Adapter;
    },
    /** Visibility, description or tags (owner only). */
    update: (idOrRef: string, patch: AdapterUpdate, options: CallOptions = {}) =>
      this.json<Adapter>("PATCH", `/v1/adapters/${seg(idOrRef)}`, { json: patch, ...options }),
    /** Deletes an adapter (owner only); `force` also deletes the caller's compositions using it. */
    delete: (idOrRef: string, opts: CallOptions & { force?: boolean } = {}) =>
      this.json<AdapterDeleted>("DELETE", `/v1/adapters/${seg(idOrRef)}`, {
        query: { force: opts.force ? "true" : undefined },
        signal: opts.signal,
      }),
  };

  readonly compositions = {
    create: (body: CompositionCreate, options: CallOptions = {}) =>
      this.json<Composition>("POST", "/v1/compositions", { json: body, ...options }),
    list: (options: CallOptions = {}) => this.json<List<Composition>>("GET", "/v1/compositions", options),
    get: (idOrName: string, options: CallOptions = {}) => this.json<Composition>("GET", `/v1/compositions/${seg(idOrName)}`, options),
    delete: (idOrName: string, options: CallOptions = {}) =>
      this.json<CompositionDeleted>("DELETE", `/v1/compositions/${seg(idOrName)}`, options),
    /** Bakes the composition into a new adapter (with the SVD truncation report). */
    bake: (idOrName: string, body: BakeRequest, options: CallOptions = {}) =>
      this.json<BakedAdapter>("POST", `/v1/compositions/${seg(idOrName)}/bake`, { json: body, ...options }),
  };

  readonly completions = {
    create: (body: CompletionRequest, options: CallOptions = {}) =>
      this.json<Completion>("POST", "/v1/completions", { json: { ...body, stream: false }, ...options }),
    /** Token-by-token chunks (`choices[0].text`); the last one carries finish_reason and usage. */
    stream: (body: CompletionRequest, options: CallOptions = {}) =>
      this.events<Completion>("/v1/completions", { ...body, stream: true }, options),
  };

  readonly chat = {
    create: (body: ChatRequest, options: CallOptions = {}) =>
      this.json<ChatCompletion>("POST", "/v1/chat/completions", { json: { ...body, stream: false }, ...options }),
    stream: (body: ChatRequest, options: CallOptions = {}) =>
      this.events<ChatCompletionChunk>("/v1/chat/completions", { ...body, stream: true }, options),
  };

  readonly models = {
    list: (options: CallOptions = {}) => this.json<List<Model>>("GET", "/v1/models", options),
    /** One model with its manifest (targetable modules, shapes, max rank). */
    get: (id: string, options: CallOptions = {}) => this.json<ModelDetail>("GET", `/v1/models/${seg(id)}`, options),
  };

  readonly keys = {
    list: (options: CallOptions = {}) => this.json<List<ApiKey>>("GET", "/v1/keys", options),
    /** A new key for the caller's tenant; `key` is shown only in this answer. */
    create: (options: CallOptions = {}) => this.json<CreatedApiKey>("POST", "/v1/keys", options),
    revoke: (id: string, options: CallOptions = {}) => this.json<ApiKey>("DELETE", `/v1/keys/${seg(id)}`, options),
  };

  readonly usage = {
    /** Usage per UTC day (default: the last 30 days) and the tenant's limits. */
    get: (range: { from?: string; to?: string } = {}, options: CallOptions = {}) =>
      this.json<UsageReport>("GET", "/v1/usage", { query: range, ...options }),
  };
}
