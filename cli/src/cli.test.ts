// The CLI in-process, without an edge: config file handling, argument and mix parsing, exit
// codes of usage errors, and a broken PEFT folder refused by core before anything is sent.
// (With a real worker and runner: test/e2e/cli.test.ts.)
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writePeftAdapter } from "#core/peft/index";
import { createRng, randomLoraAdapter } from "#core/random/index";
import { configPath, readConfig, resolveConnection, writeConfig } from "./config.js";
import { main } from "./main.js";
import { lines } from "./io.js";
import { parseMix } from "./mix.js";
import { progressBar } from "./output.js";
import { captureIo } from "./test-io.js";
import { UsageError } from "./usage-error.js";

let home: string;
beforeEach(() => {
  home = mkdtempSync(path.join(tmpdir(), "loraedge-cli-unit-"));
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

describe("config file", () => {
  it("lives under XDG_CONFIG_HOME (else ~/.config), is written 0600 in a 0700 folder, and round-trips", () => {
    expect(configPath({ HOME: "/h" })).toBe("/h/.config/loraedge/config.json");
    expect(configPath({ HOME: "/h", XDG_CONFIG_HOME: "/x" })).toBe("/x/loraedge/config.json");
    expect(configPath({ HOME: "/h", XDG_CONFIG_HOME: "relative" })).toBe("/h/.config/loraedge/config.json");
    const env = { XDG_CONFIG_HOME: home };
    expect(readConfig(env)).toBeNull();
    const file = writeConfig(env, { url: "http://edge.test", api_key: "le_secret" });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(readConfig(env)).toEqual({ url: "http://edge.test", api_key: "le_secret" });
  });

  it("resolves flag > environment > file, and says how to log in when nothing is set", () => {
    const env: Record<string, string> = { XDG_CONFIG_HOME: home };
    expect(() => resolveConnection(env, {})).toThrow(/not logged in.*loraedge login/);
    writeConfig(env, { url: "http://file.test/", api_key: "k-file" });
    expect(resolveConnection(env, {})).toMatchObject({ url: "http://file.test", apiKey: "k-file" });
    env.LORAEDGE_URL = "http://env.test";
    env.LORAEDGE_API_KEY = "k-env";
    expect(resolveConnection(env, {})).toMatchObject({ url: "http://env.test", apiKey: "k-env" });
    expect(resolveConnection(env, { url: "https://flag.test", key: "k-flag" })).toMatchObject({ url: "https://flag.test", apiKey: "k-flag" });
    expect(() => resolveConnection(env, { url: "ftp://x" })).toThrow(UsageError);
  });

  it("tightens a config folder that already existed with a laxer mode", () => {
    const env = { XDG_CONFIG_HOME: home };
    const dir = path.dirname(configPath(env));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    writeConfig(env, { url: "http://x.test", api_key: "k" });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it("refuses a config file that is not its own", () => {
    const file = configPath({ XDG_CONFIG_HOME: home });
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, "[1,2]");
    expect(() => readConfig({ XDG_CONFIG_HOME: home })).toThrow(/not a loraedge config/);
  });
});

describe("parseMix", () => {
  it("reads adapter=weight terms, separate or comma-separated, negative weights allowed", () => {
    expect(parseMix(["a=0.7", "acme/b@1.0.0=-0.2,c"])).toEqual([
      { ref: "a", weight: 0.7 },
      { ref: "acme/b@1.0.0", weight: -0.2 },
      { ref: "c", weight: 1 },
    ]);
  });
  it.each(["a=", "a=x", "a=NaN", "a=Infinity", "=1"])("refuses %s", (term) => {
    expect(() => parseMix([term])).toThrow(UsageError);
  });
});

describe("exit codes without an edge", () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const io = captureIo({ env: { XDG_CONFIG_HOME: home, ...env }, cwd: home });
    const code = await main(args, io);
    return { code, out: io.out(), err: io.err() };
  };

  it("--help is 0; no command, an unknown command or flag, a missing argument or a bad number is 2", async () => {
    expect((await run(["--help"])).code).toBe(0);
    expect((await run(["--version"])).out).toMatch(/^loraedge \d+\.\d+\.\d+\n$/);
    expect((await run(["push", "--help"])).out).toMatch(/^usage: loraedge push <peft-dir>/);
    expect((await run([])).code).toBe(2);
    const unknown = await run(["frobnicate"]);
    expect(unknown).toMatchObject({ code: 2 });
    expect(unknown.err).toMatch(/unknown command 'frobnicate'/);
    expect((await run(["ls", "--bogus"])).err).toMatch(/Unknown option '--bogus'/);
    expect((await run(["compose", "only-a-name"])).code).toBe(2);
    const notLoggedIn = await run(["ls"]);
    expect(notLoggedIn.code).toBe(2);
    expect(notLoggedIn.err).toMatch(/not logged in/);
    const badNumber = await run(["complete", "hi", "--temperature", "warm"], { LORAEDGE_URL: "http://127.0.0.1:9", LORAEDGE_API_KEY: "k" });
    expect(badNumber.code).toBe(2);
    expect(badNumber.err).toMatch(/--temperature expects a number ≥ 0, got 'warm'/);
    expect((await run(["bake", "c", "--strategy", "average"], { LORAEDGE_URL: "http://127.0.0.1:9", LORAEDGE_API_KEY: "k" })).code).toBe(2);
  });

  it("an unreachable edge is a remote error (1) naming the URL", async () => {
    const r = await run(["models"], { LORAEDGE_URL: "http://127.0.0.1:9", LORAEDGE_API_KEY: "k" });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it("push refuses a broken PEFT folder with core's message before contacting the edge (2)", async () => {
    const adapter = randomLoraAdapter(createRng(3), [{ module: "model.layers.0.self_attn.q_proj", rank: 2, inFeatures: 8, outFeatures: 8 }], {
      baseModel: "m",
    });
    const files = writePeftAdapter(adapter, { baseModel: "m" });
    const dir = path.join(home, "broken");
    mkdirSync(dir);
    writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(files.config));
    writeFileSync(path.join(dir, "adapter_model.safetensors"), files.safetensors.subarray(0, files.safetensors.length - 10));
    // The edge is unreachable: a 2 here proves nothing was attempted over the network.
    const env = { LORAEDGE_URL: "http://127.0.0.1:9", LORAEDGE_API_KEY: "k" };
    const truncated = await run(["push", dir], env);
    expect(truncated.code).toBe(2);
    expect(truncated.err).toMatch(/broken: (file_truncated|offsets_out_of_range|shape_size_mismatch): /);
    // Valid PEFT files with a chat_template.jinja that does not parse: the template's message, nothing sent.
    writeFileSync(path.join(dir, "adapter_model.safetensors"), files.safetensors);
    writeFileSync(path.join(dir, "chat_template.jinja"), "{% for m in messages %}{{ m.content }}");
    const template = await run(["push", dir], env);
    expect(template.code).toBe(2);
    expect(template.err).toMatch(/broken: chat template does not parse: /);
    rmSync(path.join(dir, "chat_template.jinja"));

    writeFileSync(path.join(dir, "adapter_config.json"), "{not json");
    expect((await run(["push", dir], env)).err).toMatch(/config_not_json/);
    rmSync(path.join(dir, "adapter_model.safetensors"));
    expect((await run(["push", dir], env)).err).toMatch(/adapter_model\.safetensors: missing/);
    expect((await run(["push", path.join(home, "nowhere")], env)).err).toMatch(/not a folder/);
  });

  it("dev random-adapter writes the same loadable folder from the same seed (offline, with --manifest)", async () => {
    const manifest = {
      id: "m",
      architecture: "llama",
      dtype: "float32",
      vocabSize: 10,
      contextLength: 16,
      hiddenSize: 8,
      numLayers: 1,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 8,
      intermediateSize: 16,
      parameters: 1,
      tokenizer: { kind: "byte", bosId: null, eosId: null },
      maxRank: 8,
      targets: [
        { module: "model.layers.0.self_attn.q_proj", in: 8, out: 8, mode: "unmerged" },
        { module: "model.layers.0.self_attn.v_proj", in: 8, out: 8, mode: "unmerged" },
      ],
    };
    writeFileSync(path.join(home, "manifest.json"), JSON.stringify(manifest));
    for (const d of ["a", "b"]) {
      expect((await run(["dev", "random-adapter", "--manifest", "manifest.json", "--rank", "4", "--seed", "9", d])).code).toBe(0);
    }
    const bytes = (d: string) => readFileSync(path.join(home, d, "adapter_model.safetensors"));
    expect(bytes("a").equals(bytes("b"))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(home, "a", "adapter_config.json"), "utf8"))).toMatchObject({ r: 4, base_model_name_or_path: "m" });
    expect((await run(["dev", "random-adapter", "--manifest", "manifest.json", "--rank", "64", "c"])).err).toMatch(/exceeds m's max rank 8/);
    expect((await run(["dev", "make-coffee", "x"])).code).toBe(2);
  });
});

describe("progress bar", () => {
  it("redraws in place on a terminal (once per whole percent) and prints one line elsewhere", () => {
    const tty = captureIo({ stderrIsTTY: true });
    const bar = progressBar(tty, "push a");
    for (let loaded = 0; loaded <= 2048; loaded += 256) bar.update({ loaded, total: 2048 });
    bar.update({ loaded: 2048, total: 2048 }); // same percent: not redrawn
    bar.done(2048);
    const frames = tty.err().split("\r").filter((f) => f !== "");
    expect(frames).toHaveLength(10);
    expect(frames[0]).toBe("push a [..............................]   0% 0 B / 2.0 KiB");
    expect(frames[8]).toBe("push a [##############################] 100% 2.0 KiB / 2.0 KiB");
    expect(frames[9]).toBe("\x1b[2Kpush a: 2.0 KiB sent\n");

    const log = captureIo({ stderrIsTTY: false });
    const quiet = progressBar(log, "push a");
    quiet.update({ loaded: 1024, total: 2048 });
    quiet.done(2048);
    expect(log.err()).toBe("push a: 2.0 KiB sent\n");
  });
});

describe("stdin", () => {
  it("splits chunks into lines wherever they break (LF, CR LF, no final newline)", async () => {
    const chunks = async function* () {
      yield "fir";
      yield Buffer.from("st\r\nsec");
      yield "ond\n\nthird";
    };
    const seen: string[] = [];
    for await (const l of lines(chunks())) seen.push(l);
    expect(seen).toEqual(["first", "second", "", "third"]);
  });

  it("the real bin exits after `login` read its key line, though stdin stays open (a terminal)", async () => {
    const bin = path.resolve(import.meta.dirname, "../bin/loraedge.js");
    const child = spawn(process.execPath, [bin, "login", "--url", "http://127.0.0.1:9"], {
      env: { ...process.env, XDG_CONFIG_HOME: home, LORAEDGE_API_KEY: "" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.stdin.write("le_some_key\n"); // and never ended
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(null);
      }, 30_000);
      child.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code, err).toBe(1); // the edge is unreachable: a remote error, and the process ended
    expect(err).toMatch(/^loraedge: cannot reach http:\/\/127\.0\.0\.1:9/);
    expect(err).not.toMatch(/ERR_STREAM|Unhandled/);
  });
});
