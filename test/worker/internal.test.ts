import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { signRequest } from "#core/wire/hmac";
import { edgeAdapterPaths, SHA256_HEADER } from "#core/wire/runner-api";
import { peftFiles, tinyAdapter, uploadForm } from "./adapter-files.js";
import { useFakeRunners, SECRET } from "./fake-runner.js";
import { EDGE, newTenant, uploadAdapter } from "./helpers.js";

useFakeRunners();

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

    // Without a valid signature the routes say nothing: the same 404 as a path that does not exist.
    const unknown = await exports.default.fetch(EDGE + paths.blob + "-nope");
    const silent = (await unknown.json()) as { error: { type: string; message: string } };
    const expectSilent404 = async (res: Response, path = paths.blob) => {
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body).toEqual({ error: { type: silent.error.type, message: `no route for GET ${path}` } });
    };
    await expectSilent404(await exports.default.fetch(EDGE + paths.blob));
    await expectSilent404(await signedGet(paths.blob, "wrong-secret"));
    await expectSilent404(await signedGet(paths.blob, SECRET, Math.floor(Date.now() / 1000) - 3600));
    // A tenant key is not a runner signature.
    await expectSilent404(await exports.default.fetch(new Request(EDGE + paths.blob, { headers: { authorization: `Bearer ${t.key}` } })));
    expect((await signedGet(edgeAdapterPaths("ad_missing").blob)).status).toBe(404);
  });

  it("refuse a replayed signature (even after the first call) and a timestamp more than 30 s ahead (#12)", async () => {
    const t = await newTenant("a");
    const up = (await uploadAdapter(t.key, uploadForm(peftFiles(tinyAdapter(1, 4)), { name: "p" }))).body;
    const path = edgeAdapterPaths(up.id).blob;
    const headers = await signRequest(SECRET, { method: "GET", pathAndQuery: path });
    const first = await exports.default.fetch(new Request(EDGE + path, { headers }));
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const replay = await exports.default.fetch(new Request(EDGE + path, { headers }));
    expect(replay.status).toBe(404);
    expect(((await replay.json()) as { error: { message: string } }).error.message).toBe(`no route for GET ${path}`);
    // Recorded in D1, so a replay to another isolate is refused too.
    const row = await env.DB.prepare("SELECT expires_at FROM used_signatures WHERE signature = ?").bind(headers["x-loraedge-signature"]!).first<{ expires_at: number }>();
    expect(row?.expires_at).toBe((Number(headers["x-loraedge-timestamp"]) + 301) * 1000);
    // Signed anew (fresh nonce), the same fetch is served again: a retry must re-sign.
    expect((await signedGet(path)).status).toBe(200);
    const now = Math.floor(Date.now() / 1000);
    expect((await signedGet(path, SECRET, now + 299)).status).toBe(404);
    expect((await signedGet(path, SECRET, now + 20)).status).toBe(200);
  });
});
