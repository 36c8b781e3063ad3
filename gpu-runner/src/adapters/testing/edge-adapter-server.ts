/**
 * For tests: a real Node HTTP server implementing the edge's two signed adapter routes
 * (core/src/wire/runner-api.ts `edgeAdapterPaths`): it verifies the runner's HMAC signature,
 * serves adapter_model.safetensors with `x-loraedge-sha256`, and adapter_config.json.
 * It is the edge's contract, served from memory; tests use it to count fetches, delay
 * answers and serve corrupted bytes.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { sha256Hex } from "../adapter-cache.js";
import { SHA256_HEADER } from "#core/wire/runner-api";
import { signatureHeaders, verifyRequest } from "#core/wire/hmac";

export interface ServedAdapter {
  config: Record<string, unknown> | string;
  safetensors: Uint8Array;
}

export interface EdgeAdapterServer {
  url: string;
  /** Adds or replaces an adapter; returns the sha256 of its blob. */
  put(id: string, adapter: ServedAdapter): string;
  /** Blob fetches per adapter id. */
  fetches: Map<string, number>;
  /** Requests refused for a bad signature. */
  unauthorized: number;
  /** Serve these bytes instead of the real blob (sha header still announces the real one). */
  corrupt: Set<string>;
  /** Milliseconds to wait before answering a blob request. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startEdgeAdapterServer(secret: string): Promise<EdgeAdapterServer> {
  const adapters = new Map<string, { config: string; blob: Uint8Array; sha: string }>();
  const state: EdgeAdapterServer = {
    url: "",
    fetches: new Map(),
    unauthorized: 0,
    corrupt: new Set(),
    delayMs: 0,
    put(id, adapter) {
      const config = typeof adapter.config === "string" ? adapter.config : JSON.stringify(adapter.config);
      const sha = sha256Hex(adapter.safetensors);
      adapters.set(id, { config, blob: adapter.safetensors, sha });
      return sha;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? "/";
      const verdict = await verifyRequest(secret, {
        method: req.method ?? "GET",
        pathAndQuery: url,
        body: new Uint8Array(0),
        ...signatureHeaders((name) => req.headers[name] as string | undefined),
      });
      if (!verdict.ok) {
        state.unauthorized++;
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { type: "authentication_error", message: verdict.reason } }));
        return;
      }
      const match = /^\/internal\/adapters\/([^/]+)\/(blob|config)$/.exec(url);
      const entry = match ? adapters.get(decodeURIComponent(match[1]!)) : undefined;
      if (!match || !entry) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: { type: "not_found_error", message: url } }));
        return;
      }
      const id = decodeURIComponent(match[1]!);
      if (match[2] === "config") {
        res.writeHead(200, { "content-type": "application/json" }).end(entry.config);
        return;
      }
      state.fetches.set(id, (state.fetches.get(id) ?? 0) + 1);
      if (state.delayMs) await new Promise((r) => setTimeout(r, state.delayMs));
      let blob = entry.blob;
      if (state.corrupt.has(id)) {
        blob = blob.slice();
        blob[blob.length - 1] ^= 0xff;
      }
      res.writeHead(200, { "content-type": "application/octet-stream", [SHA256_HEADER]: entry.sha }).end(blob);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
