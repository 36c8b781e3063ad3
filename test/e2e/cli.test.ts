// The `loraedge` CLI doing the README flow against the real worker under `wrangler dev` and
// the real runner (one stack for the whole file): login → dev random-adapter → push (and a
// broken folder: exit 2 with core's message, nothing stored) → ls --json → show → compose →
// complete (--stream) → chat → bake → pull (the pulled folder loads with core's PEFT loader
// and equals what was pushed) → rm → usage. The real bin (cli/bin/loraedge.js, as `npx
// loraedge` runs it) is spawned for login, push and the streams; the other steps call the same
// `main` in-process (faster; same code after argument parsing).
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPeftAdapter } from "#core/peft/index";
import { main } from "../../cli/src/main.js";
import { captureIo } from "../../cli/src/test-io.js";
import { repoRoot, type Service } from "../../scripts/lib/stack.js";
import { E2E_MODEL, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const KEY = "le_e2e_cli_" + "l".repeat(30);
const MODEL = E2E_MODEL;
const BIN = path.join(repoRoot, "cli/bin/loraedge.js");

interface Result {
  code: number;
  out: string;
  err: string;
}

describe("loraedge CLI: the README flow against the real worker + runner", () => {
  const work = mkdtempSync(path.join(tmpdir(), "loraedge-cli-e2e-"));
  const env = { XDG_CONFIG_HOME: path.join(work, "config"), HOME: work };
  let stack: EdgeStack | undefined;
  let edge: Service | undefined;

  /** The real bin in a child process (Node 22: the one running vitest). */
  const spawnCli = (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) =>
    new Promise<Result>((resolve, reject) => {
      const { LORAEDGE_URL: _u, LORAEDGE_API_KEY: _k, ...inherited } = process.env;
      const child = spawn(process.execPath, [BIN, ...args], {
        cwd: work,
        env: { ...inherited, ...env, ...opts.env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (err += d));
      child.once("error", reject);
      child.once("exit", (code) => resolve({ code: code ?? -1, out, err }));
      child.stdin.end(opts.stdin ?? "");
    });
  /** The same entry point in-process. */
  const cli = async (args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Result> => {
    const io = captureIo({ env: { ...env, ...opts.env }, cwd: work, stdin: opts.stdin });
    const code = await main(args, io);
    return { code, out: io.out(), err: io.err() };
  };
  const ok = (r: Result) => {
    if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
    return r.out;
  };
  const json = async (args: string[]) => JSON.parse(ok(await cli([...args, "--json"])));

  beforeAll(async () => {
    stack = await startEdgeStack({ tenant: "acme", key: KEY });
    edge = stack.edge;
  });

  afterAll(async () => {
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it("login checks the key and stores it 0600; a bad key is refused (1) and not stored", async () => {
    const bad = await cli(["login", "--url", edge!.url, "--key", "le_not_a_key"]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/401 authentication_error/);
    expect(await cli(["ls"])).toMatchObject({ code: 2 }); // still not logged in
    const admin = await cli(["login", "--url", edge!.url, "--key", stack!.adminToken]);
    expect(admin.code).toBe(1); // the admin token is not a tenant key

    // The real bin, the key on stdin.
    const r = await spawnCli(["login", "--url", edge!.url + "/"], { stdin: KEY + "\n" });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/logged in to http:\/\/127\.0\.0\.1:\d+/);
    const file = path.join(env.XDG_CONFIG_HOME, "loraedge", "config.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ url: edge!.url, api_key: KEY });

    // The environment overrides the file.
    const overridden = await cli(["models"], { env: { LORAEDGE_API_KEY: "le_wrong" } });
    expect(overridden.code).toBe(1);
    expect(ok(await cli(["models"]))).toMatch(/loraedge-tiny/);
    expect((await json(["models", MODEL])).manifest.id).toBe(MODEL);
  });

  it("generates, pushes (refusing a broken folder), lists, shows, composes, completes, chats, bakes, pulls, removes", async () => {
    ok(await cli(["dev", "random-adapter", "--model", MODEL, "--rank", "4", "--seed", "7", "pirate"]));
    ok(await cli(["dev", "random-adapter", "--model", MODEL, "--rank", "8", "--seed", "8", "poet"]));

    const pushed = await spawnCli(["push", "pirate", "--public", "--tags", "style,fun"]);
    expect(pushed.code, pushed.err).toBe(0);
    expect(pushed.out).toMatch(/^pushed acme\/pirate@1\.0\.0 \(ad_[0-9a-f]+\): rank 4, 4 modules/);
    expect(pushed.err).toMatch(/push pirate: [\d.]+ KiB sent/);
    const poet = await json(["push", "poet", "--version", "0.1.0"]);
    expect(poet).toMatchObject({ ref: "acme/poet@0.1.0", rank: 8, visibility: "private" });

    // A broken folder: core's message, exit 2, nothing stored.
    cpSync(path.join(work, "pirate"), path.join(work, "broken"), { recursive: true });
    const weights = path.join(work, "broken", "adapter_model.safetensors");
    truncateSync(weights, statSync(weights).size - 16);
    const broken = await spawnCli(["push", "broken"]);
    expect(broken.code).toBe(2);
    expect(broken.err).toMatch(/broken: [a-z_]+: /);
    // Well-formed but made for another model's shapes: refused locally by core's compatibility check.
    const manifest = (await json(["models", MODEL])).manifest;
    const target = manifest.targets.find((t: { mode: string }) => t.mode === "unmerged");
    const alien = { ...manifest, id: "alien", targets: [{ ...target, in: target.in + 1 }] };
    writeFileSync(path.join(work, "alien.json"), JSON.stringify(alien));
    ok(await cli(["dev", "random-adapter", "--manifest", "alien.json", "--rank", "2", "other"]));
    const incompatible = await cli(["push", "other", "--model", MODEL]);
    expect(incompatible.code).toBe(2);
    expect(incompatible.err).toMatch(new RegExp(`other: incompatible with ${MODEL}: `));
    // A model the edge does not serve: the API's 404, with what to do (1).
    const wrongModel = await cli(["push", "other", "--model", "no-such-model"]);
    expect(wrongModel.code).toBe(1);
    expect(wrongModel.err).toMatch(/model 'no-such-model'.*pass --model/);

    const listed = await json(["ls", "--mine", "--sort", "name"]);
    expect(listed.data.map((a: { ref: string }) => a.ref)).toEqual(["acme/pirate@1.0.0", "acme/poet@0.1.0"]);
    expect((await json(["ls", "--tag", "fun"])).data.map((a: { name: string }) => a.name)).toEqual(["pirate"]);
    expect(ok(await cli(["ls"]))).toMatch(/^REF +BASE MODEL +RANK/);

    const shown = await json(["show", "pirate"]);
    expect(shown).toMatchObject({ ref: "acme/pirate@1.0.0", rank: 4, config: { r: 4, base_model_name_or_path: MODEL } });
    expect(ok(await cli(["show", "acme/poet@0.1.0"]))).toMatch(/rank: +8/);
    expect((await cli(["show", "nobody"])).code).toBe(1);

    const comp = await json(["compose", "pirate-poet", "pirate=0.7", "poet@0.1.0=-0.2"]);
    expect(comp.adapters.map((a: { ref: string; weight: number }) => [a.ref, a.weight])).toEqual([
      ["acme/pirate@1.0.0", 0.7],
      ["acme/poet@0.1.0", -0.2],
    ]);
    expect((await json(["compositions"])).data.map((c: { name: string }) => c.name)).toEqual(["pirate-poet"]);

    // complete: JSON, text, and the real bin streaming: same seed, same text.
    const sampling = ["--max-tokens", "8", "--temperature", "0", "--seed", "1"];
    const completion = await json(["complete", "Once upon a time", "--composition", "pirate-poet", ...sampling]);
    const text: string = completion.choices[0].text;
    expect(completion.model).toBe(MODEL);
    expect(ok(await cli(["complete", "Once upon a time", "--composition", "pirate-poet", ...sampling]))).toBe(text + "\n");
    const streamed = await spawnCli(["complete", "Once upon a time", "--composition", "pirate-poet", "--stream", ...sampling]);
    expect(streamed.code, streamed.err).toBe(0);
    expect(streamed.out).toBe(text + "\n");
    const chunks = ok(await cli(["complete", "Once upon a time", "--mix", "pirate=1,poet=-0.5", "--stream", "--json", ...sampling]))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c: { object: string }) => c.object === "text_completion")).toBe(true);

    // chat: each stdin line is a user turn.
    const chat = await cli(["chat", "--mix", "pirate=1", "--max-tokens", "4", "--temperature", "0"], { stdin: "Ahoy\nWho goes there?\n" });
    expect(chat.code, chat.err).toBe(0);
    const oneTurn = await json(["chat", "Ahoy", "--mix", "pirate=1", "--max-tokens", "4", "--temperature", "0"]);
    expect(chat.out.startsWith(oneTurn.choices[0].message.content)).toBe(true);

    const baked = await json(["bake", "pirate-poet", "--strategy", "ties", "--rank", "4"]);
    expect(baked).toMatchObject({ ref: "acme/pirate-poet-ties@1.0.0", rank: 4, bake: { strategy: "ties" } });
    expect(ok(await cli(["bake", "pirate-poet", "--strategy", "linear", "--name", "pp-linear"]))).toMatch(
      /^baked pirate-poet → acme\/pp-linear@1\.0\.0 .*discarded energy [\d.]+ %/,
    );

    expect(ok(await cli(["show", "pp-linear"]))).toMatch(/^baked with linear \(rank \d+\): discarded energy [\d.]+ %, fidelity to the mix: KL /m);
    expect(ok(await cli(["show", "pirate"]))).not.toMatch(/^baked with/m);

    // pull: the folder loads with core's PEFT loader and equals what was pushed.
    expect(ok(await cli(["pull", "acme/pirate@1.0.0", "pulled"]))).toMatch(/^pulled acme\/pirate@1\.0\.0/);
    const files = (dir: string) => ({
      config: JSON.parse(readFileSync(path.join(work, dir, "adapter_config.json"), "utf8")),
      weights: new Uint8Array(readFileSync(path.join(work, dir, "adapter_model.safetensors"))),
    });
    const [mine, theirs] = [files("pirate"), files("pulled")];
    expect(theirs.weights).toEqual(mine.weights);
    expect(theirs.config).toEqual(mine.config);
    const [a, b] = [loadPeftAdapter(mine.config, mine.weights), loadPeftAdapter(theirs.config, theirs.weights)];
    expect([...b.modules.keys()]).toEqual([...a.modules.keys()]);
    for (const [name, m] of a.modules) expect(b.modules.get(name)!.b).toEqual(m.b);
    expect((await cli(["pull", "pirate", "pulled"])).code).toBe(2); // would overwrite
    ok(await cli(["pull", "pirate-poet-ties"])); // the baked adapter, into ./pirate-poet-ties
    expect(loadPeftAdapter(files("pirate-poet-ties").config, files("pirate-poet-ties").weights).modules.size).toBe(baked.targets.length);

    // rm: refused while a composition uses it (the API's message), then with --force.
    const refused = await cli(["rm", "pirate"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/used by 1 of your saved composition\(s\).*409 conflict_error/);
    expect(await json(["rm", "poet@0.1.0", "--force"])).toMatchObject({ deleted: true, deleted_compositions: [comp.id] });
    ok(await cli(["rm", "pirate"]));
    expect((await json(["ls", "--mine", "--all"])).data.map((x: { name: string }) => x.name).sort()).toEqual(["pirate-poet-ties", "pp-linear"]);

    const usage = await json(["usage"]);
    expect(usage.totals.requests).toBeGreaterThanOrEqual(6);
    expect(usage.totals.completion_tokens).toBeGreaterThan(0);
    expect(ok(await cli(["usage"]))).toMatch(/^DATE +REQUESTS/);
  });

  it("manages keys", async () => {
    const created = await json(["keys", "create"]);
    expect(created.key).toMatch(/^le_/);
    expect((await json(["keys"])).data.map((k: { id: string }) => k.id)).toContain(created.id);
    expect(ok(await cli(["keys", "revoke", created.id]))).toMatch(/^revoked /);
    expect((await cli(["models"], { env: { LORAEDGE_API_KEY: created.key } })).code).toBe(1);
  });
});
