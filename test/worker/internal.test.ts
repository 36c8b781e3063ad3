import { exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { signRequest } from "#core/wire/hmac";
import { edgeAdapterPaths, SHA256_HEADER } from "#core/wire/runner-api";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { installFakeRunners, SECRET } from "./fake-runner.js";
import { EDGE, newTenant, uploadAdapter } from "./helpers.js";

beforeEach(() => {
  installFakeRunners();
});
afterEach(() => {
  vi.restoreAllMocks();
});

async function signedGet(path: string, secret = SECRET, timestamp?: number): Promise<Response> {
  const headers = await signRequest(secret, { method: "GET", pathAndQuery: path, timestamp });
  return exports.default.fetch(new Request(EDGE + path, { headers }));
}

describe("internal adapter routes (runner → edge)", () => {
  it("serve the blob with its sha256 and the config, to signed requests only", async () => {
    const t = await newTenant("a");
    const files = peftFiles(tinyAdapter(1, 4));
    const up = (await uploadAdapter(t.key, uploadForm(files, { name: "p" }))).body; // private: runners still get it
    const paths = edgeAdapterPaths(up.id);
    const blob = await signedGet(paths.blob);
    expect(blob.status).toBe(200);
    expect(blob.headers.get(SHA256_HEADER)).toBe(up.sha256);
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(files.weights);
    const config = await signedGet(paths.config);
    expect(config.status).toBe(200);
    expect(await config.json()).toEqual(JSON.parse(files.config));

    expect((await exports.default.fetch(EDGE + paths.blob)).status).toBe(401);
    expect((await signedGet(paths.blob, "wrong-secret")).status).toBe(403);
    expect((await signedGet(paths.blob, SECRET, Math.floor(Date.now() / 1000) - 3600)).status).toBe(403);
    // A tenant key is not a runner signature.
    expect((await exports.default.fetch(new Request(EDGE + paths.blob, { headers: { authorization: `Bearer ${t.key}` } }))).status).toBe(401);
    expect((await signedGet(edgeAdapterPaths("ad_missing").blob)).status).toBe(404);
  });
});
