// The web app in a real browser (Debian's chromium through playwright-core) against the real
// stack (gpu-runner + wrangler dev serving web/dist as static assets): sign in, upload a
// generated adapter through the page (and a broken one: the page shows the error, nothing is
// stored), compose two with weights, stream the playground side by side, bake, revoke a key.
// A screenshot of each page goes to .cache/screenshots/. Skips when chromium is absent.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { repoRoot } from "../../scripts/lib/stack.js";
import { E2E_MODEL, randomPeftFiles, startEdgeStack, type EdgeStack } from "./edge-stack.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`web-app browser tests skipped: no chromium at ${CHROMIUM} (apt-get install -y chromium)`);

const KEY = "le_e2e_web_" + "w".repeat(32);
const MODEL = E2E_MODEL;
const shots = path.join(repoRoot, ".cache/screenshots");

describe.skipIf(!hasChromium)("web app in chromium (runner + wrangler dev)", () => {
  const filesDir = mkdtempSync(path.join(tmpdir(), "loraedge-web-files-"));
  let stack: EdgeStack | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base = "";
  let manifest: ModelManifest;
  const consoleErrors: string[] = [];

  const api = async (p: string, init: { method?: string; json?: unknown } = {}) => {
    const res = await fetch(base + p, {
      method: init.method ?? (init.json ? "POST" : "GET"),
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: init.json === undefined ? undefined : JSON.stringify(init.json),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${p}: ${res.status} ${text}`);
    return JSON.parse(text);
  };
  /** Writes a PEFT folder of a random adapter; `inFeatures` can be made wrong on purpose. */
  const peftFolder = (name: string, seed: number, rank: number, wrongIn = false) => {
    const files = randomPeftFiles(manifest, seed, rank, { wrongIn });
    const dir = path.join(filesDir, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(files.config, null, 2));
    writeFileSync(path.join(dir, "adapter_model.safetensors"), files.weights);
    return [path.join(dir, "adapter_config.json"), path.join(dir, "adapter_model.safetensors")];
  };
  /** Form controls without an accessible name (label, aria-label or aria-labelledby) on the page. */
  const unlabelled = () =>
    page.evaluate(`[...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby") && !(el.tagName === "BUTTON" && el.textContent.trim()))
      .map((el) => el.outerHTML.slice(0, 120))`) as Promise<string[]>;
  /** Every page is checked for unlabelled controls and horizontal overflow before its screenshot. */
  const shot = async (name: string) => {
    expect(await unlabelled(), `unlabelled controls on ${name}`).toEqual([]);
    expect(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), `horizontal overflow on ${name}`).toBe(true);
    await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  };
  const go = async (p: string) => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: p }).click();
  };

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    stack = await startEdgeStack({ tenant: "webber", key: KEY });
    base = stack.url;
    manifest = (await api(`/v1/models/${MODEL}`)).manifest;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
  });

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    rmSync(filesDir, { recursive: true, force: true });
  });

  it("serves the app at / and keeps the API at /v1 (JSON 404, not the page)", async () => {
    const home = await fetch(base + "/");
    expect(home.headers.get("content-type")).toContain("text/html");
    expect(await home.text()).toContain('<div id="app">');
    const deep = await fetch(base + "/adapters/someone/x@1.0.0", { headers: { "sec-fetch-mode": "navigate", accept: "text/html" } });
    expect(deep.status).toBe(200);
    const missing = await fetch(base + "/v1/nothing-here");
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  it("signs in with an API key (a wrong key is refused with the API's message)", async () => {
    const started = Date.now();
    await page.goto(base + "/");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    console.log(`web-app: first render of / in ${Date.now() - started} ms`);
    await shot("sign-in");
    await page.getByLabel("API key").fill("le_wrong_" + "x".repeat(32));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("401");
    await page.getByLabel("API key").fill(KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Marketplace" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("loraedge.apiKey"))).toBe(KEY);
  });

  it("refuses a broken adapter in the browser (error beside the file, nothing stored), then uploads good ones", async () => {
    await go("Upload");
    await page.getByRole("heading", { name: "Upload an adapter" }).waitFor();
    await page.getByLabel("Choose files").setInputFiles(peftFolder("broken", 9, 4, true));
    await page.getByLabel("Name").fill("broken");
    const weightErrors = page.locator("#status-weights .file-errors");
    await weightErrors.waitFor();
    expect(await weightErrors.textContent()).toMatch(/expects \d+ → \d+/);
    expect(await page.getByRole("button", { name: "Upload" }).isDisabled()).toBe(true);
    await shot("upload-broken");
    expect((await api("/v1/adapters?owner=me")).data).toEqual([]);

    for (const [name, seed, rank] of [["pirate", 7, 4], ["poet", 8, 8]] as const) {
      await page.goto(base + "/upload");
      await page.getByLabel("Choose files").setInputFiles(peftFolder(name, seed, rank));
      await page.getByLabel("Name").fill(name);
      await page.getByLabel("Tags (comma-separated)").fill("style,fun");
      await page.getByLabel("Visibility").selectOption("public");
      await page.getByTestId("upload-check").waitFor();
      if (name === "pirate") await shot("upload-valid");
      await page.getByRole("button", { name: "Upload" }).click();
      await page.getByRole("heading", { name: `webber/${name}@1.0.0` }).waitFor();
    }
    await page.getByRole("heading", { name: /Target modules \(4\)/ }).waitFor();
    await shot("adapter");
    const mine = (await api("/v1/adapters?owner=me&sort=name")).data;
    expect(mine.map((a: { name: string; rank: number }) => [a.name, a.rank])).toEqual([["pirate", 4], ["poet", 8]]);
  });

  it("browses the marketplace with filters, also at 375 px", async () => {
    await page.goto(base + "/");
    await page.getByLabel("Search").fill("poe");
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.locator(".adapter-card").count()).toBe(1);
    await page.goto(base + "/");
    await expect.poll(() => page.locator(".adapter-card").count()).toBe(2);
    await shot("marketplace");
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    await shot("marketplace-375");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("composes two adapters with weights (negative allowed), saves and bakes the composition", async () => {
    await page.getByRole("button", { name: "Add webber/pirate@1.0.0 to the mix" }).click();
    await page.getByRole("button", { name: "Add webber/poet@1.0.0 to the mix" }).click();
    await go("Compose");
    await page.getByLabel("Weight of webber/pirate@1.0.0 (exact)").fill("0.7");
    await page.getByLabel("Weight of webber/poet@1.0.0 (exact)").fill("-0.3");
    expect(await page.getByTestId("mix-cost").textContent()).toContain("Combined rank 12");
    await page.getByLabel("Save as composition").fill("duo");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.getByText('Saved composition "duo".').waitFor();
    const duo = await api("/v1/compositions/duo");
    expect(duo.adapters.map((a: { ref: string; weight: number }) => [a.ref, a.weight])).toEqual([
      ["webber/pirate@1.0.0", 0.7],
      ["webber/poet@1.0.0", -0.3],
    ]);
    await page.locator("details.composition summary").click();
    await page.getByLabel("Rank").fill("4");
    await page.getByLabel("New adapter name").fill("duo-linear");
    await page.getByRole("button", { name: "Bake" }).click();
    const energy = await page.getByTestId("discarded-energy").textContent();
    expect(energy).toMatch(/^\d+\.\d{3} %$/);
    expect(await page.getByTestId("bake-fidelity").textContent()).toMatch(/top-1 agreement \d+\.\d %/);
    await shot("compose");
    // The baked adapter's page shows its report.
    await page.getByRole("link", { name: "webber/duo-linear@1.0.0" }).click();
    await page.getByRole("heading", { name: "Baked from a composition" }).waitFor();
    await shot("adapter-baked");
    await go("Compose");
  });

  it("streams the playground side by side: base, current mix and a composition, each equal to the API's answer", async () => {
    await go("Playground");
    await page.getByLabel("Compare with").selectOption("duo");
    await page.getByLabel("Prompt", { exact: true }).fill("The edge");
    await page.getByLabel("max_tokens").fill("12");
    await page.getByRole("button", { name: "Run" }).click();
    for (const col of ["base", "mix", "second"]) {
      await page.locator(`[data-column="${col}"] .generated[data-status="done"]`).waitFor({ timeout: 60_000 });
    }
    const textOf = async (col: string) => (await page.locator(`[data-column="${col}"] .tok`).allTextContents()).join("");
    const common = { model: MODEL, prompt: "The edge", max_tokens: 12, temperature: 0.8, top_p: 1, top_k: 0, seed: 1 };
    const expected = {
      base: (await api("/v1/completions", { json: common })).choices[0].text,
      mix: (await api("/v1/completions", { json: { ...common, adapters: [{ id: "webber/pirate@1.0.0", weight: 0.7 }, { id: "webber/poet@1.0.0", weight: -0.3 }] } })).choices[0].text,
      second: (await api("/v1/completions", { json: { ...common, composition: "duo" } })).choices[0].text,
    };
    for (const col of ["base", "mix", "second"] as const) expect(await textOf(col)).toBe(expected[col]);
    expect(expected.mix).toBe(expected.second);
    const title = await page.locator('[data-column="mix"] .tok').first().getAttribute("title");
    expect(title).toMatch(/p = \d\.\d{3}/);
    await page.locator('[data-column="mix"] .tok').first().hover();
    await shot("playground");
    // The streamed runs count as uses: "most used" puts the mix's adapters first.
    const byUses = (await api("/v1/adapters?sort=uses")).data as Array<{ name: string; uses: number }>;
    expect(byUses.slice(0, 2).map((a) => a.name).sort()).toEqual(["pirate", "poet"]);
    // "Copy curl" copies exactly the streamed request.
    await page.locator('[data-column="mix"]').getByRole("button", { name: "Copy curl" }).click();
    const curl = (await page.evaluate("navigator.clipboard.readText()")) as string;
    const body = JSON.parse(curl.slice(curl.indexOf("-d '") + 4, curl.lastIndexOf("'")));
    expect(body).toMatchObject({ ...common, stream: true, logprobs: 0, adapters: [{ id: "webber/pirate@1.0.0", weight: 0.7 }, { id: "webber/poet@1.0.0", weight: -0.3 }] });
  });

  it("creates a key (shown once) and revokes it; usage shows today's tokens", async () => {
    await go("Keys & usage");
    await page.getByRole("button", { name: "Create a key" }).click();
    const newKey = (await page.getByTestId("new-key").textContent())!;
    expect(newKey).toMatch(/^le_/);
    const keys = (await api("/v1/keys")).data as Array<{ id: string; prefix: string; revoked_at: string | null }>;
    const created = keys.find((k) => newKey.startsWith(k.prefix) && !KEY.startsWith(k.prefix))!;
    await page.locator(`tr[data-key-id="${created.id}"]`).getByRole("button", { name: /Revoke/ }).click();
    await page.locator(`tr[data-key-id="${created.id}"]`).getByText(/^revoked/).waitFor();
    expect((await api("/v1/keys")).data.find((k: { id: string }) => k.id === created.id).revoked_at).not.toBeNull();
    const revoked = await fetch(base + "/v1/keys", { headers: { authorization: `Bearer ${newKey}` } });
    expect(revoked.status).toBe(401);
    await page.locator(".chart svg").waitFor();
    await shot("keys");
  });

  it("signs out (the key leaves the browser) and logged no console errors", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("loraedge.apiKey"))).toBeNull();
    // The sign-in attempt with a wrong key logs the browser's own "401" resource error; nothing else.
    expect(consoleErrors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });
});
