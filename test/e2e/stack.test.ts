// The foundation's promise: the real runner process and the real worker under `wrangler dev`,
// started the way `npm start` starts them, answer a request made with a tenant's key, and the
// request travels worker → runner over HTTP.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge, startRunner, type Service } from "../../scripts/lib/stack.js";

describe("npm start stack (runner + wrangler dev)", () => {
  const secret = "e2e-runner-secret";
  const adminToken = "e2e-admin-token";
  const apiKey = "le_e2e_" + "k".repeat(32);
  const persistDir = mkdtempSync(path.join(tmpdir(), "loraedge-stack-"));
  let runner: Service;
  let edge: Service;

  beforeAll(async () => {
    runner = await startRunner({ secret });
    edge = await startEdge({ runnerUrls: [runner.url], runnerSecret: secret, adminToken, persistDir });
  });

  afterAll(async () => {
    await Promise.all([edge?.stop(), runner?.stop()]);
    rmSync(persistDir, { recursive: true, force: true });
  });

  it("seeds the dev tenant idempotently and lists the runner's model through the worker", async () => {
    for (const expected of [201, 200]) {
      const seeded = await fetch(`${edge.url}/v1/tenants/dev`, {
        method: "PUT",
        headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
        body: JSON.stringify({ api_key: apiKey }),
      });
      expect(seeded.status).toBe(expected);
    }

    const unauthorised = await fetch(`${edge.url}/v1/models`);
    expect(unauthorised.status).toBe(401);

    const res = await fetch(`${edge.url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; data: Array<{ id: string }> };
    expect(body.object).toBe("list");
    expect(body.data.map((m) => m.id)).toContain("loraedge-tiny");
  });

  it("stops both processes cleanly", async () => {
    await edge.stop();
    await runner.stop();
    expect(await runner.exited).toBe(0);
  });
});
