// The API client (client/) against the real worker under `wrangler dev` and the real runner:
// every method group once, the error class on real 4xx answers, upload progress on a streamed
// body, completions as an async iterator of SSE chunks equal to the non-streamed text.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoraedgeClient, LoraedgeError, type UploadProgress } from "../../client/src/index.js";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { freePort, type Service } from "../../scripts/lib/stack.js";
import { E2E_MODEL, randomPeftFiles, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const KEY = "le_e2e_client_" + "c".repeat(28);
const MODEL = E2E_MODEL;

/** Resolves with the LoraedgeError `p` rejects with (fails when it resolves). */
async function apiError(p: Promise<unknown>): Promise<LoraedgeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LoraedgeError);
    return e as LoraedgeError;
  }
  throw new Error("expected a LoraedgeError");
}

describe("API client against the real worker + runner", () => {
  let stack: EdgeStack | undefined;
  let edge: Service | undefined;
  let client: LoraedgeClient;
  let manifest: ModelManifest;

  const peftFiles = (seed: number, rank: number) => randomPeftFiles(manifest, seed, rank);

  beforeAll(async () => {
    stack = await startEdgeStack({ tenant: "clienttest", key: KEY });
    edge = stack.edge;
    client = new LoraedgeClient({ baseUrl: edge.url + "/", apiKey: KEY });
    manifest = (await client.models.get(MODEL)).manifest;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it("reports API errors as LoraedgeError with status, type and the API's message", async () => {
    const anonymous = new LoraedgeClient({ baseUrl: edge!.url });
    const unauth = await apiError(anonymous.models.list());
    expect(unauth).toMatchObject({ status: 401, type: "authentication_error" });
    expect(unauth.requestId).toBeTruthy();

    const missing = await apiError(client.adapters.get("clienttest/nope@1.0.0"));
    expect(missing).toMatchObject({ status: 404, type: "not_found_error", message: "adapter 'clienttest/nope@1.0.0' not found" });

    const badQuery = await apiError(client.adapters.list({ limit: 1000 }));
    expect(badQuery.status).toBe(400);

    const unreachable = new LoraedgeClient({ baseUrl: `http://127.0.0.1:${await freePort()}`, apiKey: KEY });
    expect(await apiError(unreachable.models.list())).toMatchObject({ status: 0, type: "network_error" });
  });

  it("uploads with progress, refuses a broken adapter, lists, pages, reads files back, updates and deletes", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain(MODEL);

    const files = peftFiles(11, 4);
    const progress: UploadProgress[] = [];
    const pirate = await client.adapters.upload(
      files,
      { name: "pirate", base_model: MODEL, visibility: "public", tags: ["style", "fun"] },
      { onProgress: (p) => progress.push(p) },
    );
    expect(pirate).toMatchObject({ ref: "clienttest/pirate@1.0.0", rank: 4, visibility: "public", tags: ["style", "fun"] });
    // A streamed body in 64 KiB slices: starts at 0, grows monotonically, ends at the total.
    const total = progress[0]!.total;
    expect(total).toBeGreaterThan(files.weights.length);
    expect(progress[0]!.loaded).toBe(0);
    expect(progress.at(-1)!.loaded).toBe(total);
    expect(progress.length).toBeGreaterThanOrEqual(2 + Math.floor(total / 65536));
    expect(progress.every((p, i) => i === 0 || p.loaded > progress[i - 1]!.loaded)).toBe(true);

    // Broken weights: the API's parser message, nothing stored.
    const broken = await apiError(
      client.adapters.upload({ config: files.config, weights: files.weights.slice(0, 100) }, { name: "broken", base_model: MODEL }),
    );
    expect(broken.status).toBe(400);
    expect(broken.message).toMatch(/^file_truncated|header|offsets/);
    await apiError(client.adapters.get("clienttest/broken"));

    const poet = await client.adapters.upload(peftFiles(12, 8), { name: "poet", base_model: MODEL, version: "0.1.0" });
    const extra = await client.adapters.upload(peftFiles(13, 2), { name: "extra", base_model: MODEL });

    const page = await client.adapters.list({ owner: "me", sort: "name", limit: 2 });
    expect(page.data.map((a) => a.name)).toEqual(["extra", "pirate"]);
    expect(page.next_cursor).toBeTruthy();
    const all: string[] = [];
    for await (const a of client.adapters.iterate({ owner: "me", sort: "name", limit: 2 })) all.push(a.name);
    expect(all).toEqual(["extra", "pirate", "poet"]);
    expect((await client.adapters.list({ tag: "fun" })).data.map((a) => a.id)).toEqual([pirate.id]);

    expect((await client.adapters.get(poet.ref)).id).toBe(poet.id);
    expect((await client.adapters.get("clienttest/poet")).version).toBe("0.1.0");
    expect(JSON.parse(await client.adapters.config(pirate.id))).toEqual(files.config);
    const blob = await client.adapters.download(pirate.ref);
    expect(blob.bytes).toEqual(files.weights);
    expect(blob.sha256).toBe(pirate.sha256);

    const updated = await client.adapters.update(extra.ref, { description: "scratch", tags: "tmp" });
    expect(updated).toMatchObject({ description: "scratch", tags: ["tmp"] });
    expect(await client.adapters.delete(extra.ref)).toEqual({ id: extra.id, deleted: true, deleted_compositions: [] });
    expect((await apiError(client.adapters.get(extra.id))).status).toBe(404);
  });

  it("composes, completes (JSON and as an async iterator of SSE chunks), chats, bakes", async () => {
    const comp = await client.compositions.create({
      name: "pirate-poet",
      adapters: [
        { id: "clienttest/pirate@1.0.0", weight: 0.7 },
        { id: "clienttest/poet@0.1.0", weight: -0.2 },
      ],
    });
    expect(comp.adapters.map((a) => [a.ref, a.weight])).toEqual([
      ["clienttest/pirate@1.0.0", 0.7],
      ["clienttest/poet@0.1.0", -0.2],
    ]);
    expect((await client.compositions.list()).data.map((c) => c.name)).toEqual(["pirate-poet"]);
    expect((await client.compositions.get("pirate-poet")).id).toBe(comp.id);
    expect((await apiError(client.compositions.create({ name: "pirate-poet", adapters: [{ id: comp.adapters[0]!.id, weight: 1 }] }))).status).toBe(409);

    const request = { model: MODEL, prompt: "Once upon a time", max_tokens: 8, temperature: 0, seed: 1, composition: "pirate-poet" };
    const plain = await client.completions.create(request);
    expect(plain.object).toBe("text_completion");
    const chunks = [];
    for await (const chunk of client.completions.stream(request)) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.choices[0]?.text ?? "").join("")).toBe(plain.choices[0]!.text);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe(plain.choices[0]!.finish_reason);

    // Breaking out of the iterator early ends the stream without error.
    for await (const chunk of client.completions.stream({ ...request, max_tokens: 32 })) {
      expect(chunk.object).toBe("text_completion");
      break;
    }

    const chat = { model: MODEL, messages: [{ role: "user" as const, content: "Ahoy" }], max_tokens: 6, temperature: 0, seed: 2 };
    const answer = await client.chat.create(chat);
    expect(answer.object).toBe("chat.completion");
    let streamedChat = "";
    for await (const chunk of client.chat.stream(chat)) streamedChat += chunk.choices[0]?.delta.content ?? "";
    expect(streamedChat).toBe(answer.choices[0]!.message.content);

    const unknown = await apiError(client.completions.create({ ...request, composition: "nope" }));
    expect(unknown.status).toBe(404);

    const baked = await client.compositions.bake("pirate-poet", { strategy: "ties", density: 0.5, rank: 4, name: "pirate-poet-ties" });
    expect(baked).toMatchObject({ ref: "clienttest/pirate-poet-ties@1.0.0", rank: 4 });
    expect(baked.bake.total_discarded_energy).toBeGreaterThanOrEqual(0);
    expect(baked.bake.per_module.length).toBe(baked.targets.length);

    const inUse = await apiError(client.adapters.delete("clienttest/pirate@1.0.0"));
    expect(inUse).toMatchObject({ status: 409, type: "conflict_error" });
    expect(await client.compositions.delete("pirate-poet")).toEqual({ id: comp.id, deleted: true });
  });

  it("manages keys and reads usage", async () => {
    const created = await client.keys.create();
    expect(created.key).toMatch(/^le_/);
    const second = new LoraedgeClient({ baseUrl: edge!.url, apiKey: created.key });
    expect((await second.models.list()).object).toBe("list");
    const listed = await client.keys.list();
    expect(listed.data.map((k) => k.id)).toContain(created.id);
    expect((await client.keys.revoke(created.id)).revoked_at).not.toBeNull();
    expect((await apiError(second.models.list())).status).toBe(401);

    // Written in batches (USAGE_FLUSH_MS after a request); settled once nothing is reserved.
    let usage = await client.usage.get();
    for (let i = 0; i < 100 && usage.data.some((d) => d.reserved_tokens > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      usage = await client.usage.get();
    }
    expect(usage.totals.requests).toBeGreaterThanOrEqual(5);
    expect(usage.totals.completion_tokens).toBeGreaterThan(0);
    expect(usage.limits.tokens_per_day).toBeGreaterThan(0);
  });
});
