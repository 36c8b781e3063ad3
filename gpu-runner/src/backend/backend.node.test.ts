import { describe, expect, it } from "vitest";
import { runBackendTests } from "./backend.case.js";
import { loadBackend } from "./load-backend.js";

runBackendTests({ name: "node" });

describe("backend node: execution providers", () => {
  it("refuses an unknown execution provider instead of silently running on CPU", async () => {
    const backend = await loadBackend("node");
    await expect(backend.createSession(new Uint8Array(0), { executionProvider: "bogus" })).rejects.toThrow(/unknown execution provider "bogus"/);
  });
});
