import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("loadConfig", () => {
  it("applies defaults", () => {
    const c = loadConfig({ RUNNER_SECRET: "0123456789" }, []);
    expect(c).toMatchObject({
      port: 8788,
      host: "127.0.0.1",
      models: ["loraedge-tiny"],
      backend: "node",
      adapterCacheMb: 512,
      maxBatch: 32,
      mergePolicy: "auto",
      loraVariants: "lazy",
    });
    expect(c.edgeUrl).toBeUndefined();
  });

  it("RUNNER_LORA_VARIANTS / --lora-variants: lazy, eager or off, anything else named in the error", () => {
    expect(loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_LORA_VARIANTS: "off" }, []).loraVariants).toBe("off");
    expect(loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_LORA_VARIANTS: "off" }, ["--lora-variants", "eager"]).loraVariants).toBe("eager");
    expect(() => loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_LORA_VARIANTS: "sometimes" }, [])).toThrow(/RUNNER_LORA_VARIANTS/);
  });

  it("RUNNER_STALL_LIMIT_MS / --stall-limit-ms: whole milliseconds ≥ 0 (0: never stalled), default 30 s", () => {
    expect(loadConfig({ RUNNER_SECRET: "0123456789" }, []).stallLimitMs).toBe(30_000);
    expect(loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_STALL_LIMIT_MS: "0" }, []).stallLimitMs).toBe(0);
    expect(loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_STALL_LIMIT_MS: "0" }, ["--stall-limit-ms", "1500"]).stallLimitMs).toBe(1500);
    for (const bad of ["-1", "1.5", "soon", "86400001"]) {
      expect(() => loadConfig({ RUNNER_SECRET: "0123456789", RUNNER_STALL_LIMIT_MS: bad }, [])).toThrow(/RUNNER_STALL_LIMIT_MS/);
    }
  });

  it("reads environment variables, flags win, empty values are unset", () => {
    const c = loadConfig(
      { RUNNER_SECRET: "0123456789", RUNNER_PORT: "0", RUNNER_MODELS: "loraedge-tiny, ./dir ,", RUNNER_MAX_BATCH: "4", RUNNER_EP: "" },
      ["--max-batch", "8", "--edge-url", "http://127.0.0.1:8787", "--adapter-cache-mb", "0.5"],
    );
    expect(c).toMatchObject({ port: 0, models: ["loraedge-tiny", "./dir"], maxBatch: 8, edgeUrl: "http://127.0.0.1:8787", adapterCacheMb: 0.5 });
    expect(c.executionProvider).toBeUndefined();
  });

  it("names every invalid option by its variable", () => {
    let error: unknown;
    try {
      loadConfig({ RUNNER_PORT: "70000", RUNNER_BACKEND: "gpu", RUNNER_MAX_BATCH: "x" }, []);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ["RUNNER_SECRET", "RUNNER_PORT", "RUNNER_BACKEND", "RUNNER_MAX_BATCH"]) expect(message).toContain(name);
  });

  it("refuses unknown flags", () => {
    expect(() => loadConfig({ RUNNER_SECRET: "0123456789" }, ["--nope", "1"])).toThrow(/bad command line/);
  });
});
