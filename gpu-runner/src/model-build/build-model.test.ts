import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { modelManifestSchema } from "#core/manifest/model-manifest";
import { BUILDER_VERSION, buildModel, defaultModelCacheDir, ensureModel } from "./build-model.js";
import { loadModel } from "../model/load-model.js";
import { readModelDir } from "../model/model-dir.js";
import { useTempDirs } from "./testing/temp-dirs.js";

const tmp = useTempDirs("build");

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await fs.readdir(dir)).sort()) out.set(name, await fs.readFile(path.join(dir, name)));
  return out;
}

describe("buildModel / ensureModel", () => {
  it("the same seed gives identical bytes; another seed gives other weights", async () => {
    const [a, b, c] = [await tmp(), await tmp(), await tmp()];
    await buildModel("loraedge-tiny", a);
    await buildModel("loraedge-tiny", b);
    await buildModel("loraedge-tiny", c, { seed: 99 });
    const fa = await filesOf(a);
    const fb = await filesOf(b);
    expect([...fa.keys()]).toEqual(["graph.json", "manifest.json", "model.onnx", "weights.bin"]);
    for (const [name, bytes] of fa) expect(bytes.equals(fb.get(name)!), name).toBe(true);
    const fc = await filesOf(c);
    expect(fc.get("weights.bin")!.equals(fa.get("weights.bin")!)).toBe(false);
    expect(fc.get("model.onnx")!.equals(fa.get("model.onnx")!)).toBe(true);
    const manifest = modelManifestSchema.parse(JSON.parse(fa.get("manifest.json")!.toString()));
    expect(manifest).toMatchObject({ id: "loraedge-tiny", architecture: "llama", vocabSize: 258, contextLength: 512, numKvHeads: 2, tokenizer: { kind: "byte", bosId: 256, eosId: 257 } });
    expect(manifest.targets[0]).toEqual({ module: "model.layers.0.self_attn.q_proj", in: 64, out: 64, mode: "unmerged", fanInFanOut: false });
  });

  it("ensureModel builds once into the cache (atomically) and then reuses it", async () => {
    const cache = await tmp();
    const [d1, d2] = await Promise.all([ensureModel("loraedge-tiny", cache), ensureModel("loraedge-tiny", cache)]);
    expect(d1).toBe(path.join(cache, "loraedge-tiny"));
    expect(d2).toBe(d1);
    expect((await fs.readdir(cache)).sort()).toEqual(["loraedge-tiny"]);
    const stat = await fs.stat(path.join(d1, "weights.bin"));
    await ensureModel("loraedge-tiny", cache);
    expect((await fs.stat(path.join(d1, "weights.bin"))).mtimeMs).toBe(stat.mtimeMs);
    await expect(ensureModel("no-such-model", cache)).rejects.toThrow(/not a buildable preset/);
    // A preset cached by another builder version is rebuilt in place.
    const manifestFile = path.join(d1, "manifest.json");
    const stale = JSON.parse(await fs.readFile(manifestFile, "utf8"));
    stale.source.builderVersion = -1;
    await fs.writeFile(manifestFile, JSON.stringify(stale));
    await ensureModel("loraedge-tiny", cache);
    expect(JSON.parse(await fs.readFile(manifestFile, "utf8")).source.builderVersion).toBe(BUILDER_VERSION);
    expect((await fs.readdir(cache)).sort()).toEqual(["loraedge-tiny"]);
    await expect(buildModel("no-such-model", await tmp())).rejects.toThrow(/unknown model preset/);
  });

  it("defaultModelCacheDir honours LORAEDGE_MODEL_CACHE", () => {
    const saved = process.env.LORAEDGE_MODEL_CACHE;
    try {
      process.env.LORAEDGE_MODEL_CACHE = "/x/y";
      expect(defaultModelCacheDir()).toBe("/x/y");
      delete process.env.LORAEDGE_MODEL_CACHE;
      expect(defaultModelCacheDir()).toMatch(/\.cache\/models$/);
    } finally {
      if (saved === undefined) delete process.env.LORAEDGE_MODEL_CACHE;
      else process.env.LORAEDGE_MODEL_CACHE = saved;
    }
  });

  it("loading refuses a directory with an invalid manifest", async () => {
    const d = await tmp();
    await buildModel("loraedge-tiny", d);
    const manifest = JSON.parse(await fs.readFile(path.join(d, "manifest.json"), "utf8"));
    manifest.vocabSize = -1;
    await fs.writeFile(path.join(d, "manifest.json"), JSON.stringify(manifest));
    await expect(readModelDir(d)).rejects.toThrow(/not a valid model manifest/);
    await expect(loadModel(d, { backend: "node" })).rejects.toThrow(/vocabSize/);
  });
});
