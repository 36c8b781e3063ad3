/**
 * The tokenizer files an import carries into the model directory: tokenizer.json (required) and
 * tokenizer_config.json (optional), with a separate chat_template.jinja (what recent transformers
 * versions save) folded into tokenizer_config.json's chat_template, as transformers does on load;
 * and generation_config.json (optional), read for its end-of-turn `eos_token_id`.
 */
import fs from "node:fs/promises";
import path from "node:path";

async function readJson(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    throw new Error(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
    return value as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${what}: ${file} is not a valid JSON object: ${(err as Error).message}`);
  }
}

const exists = (file: string) => fs.stat(file).then(() => true, () => false);

export async function readTokenizerFiles(
  srcDir: string,
  what: string,
): Promise<{ tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; generationConfig: Record<string, unknown> | null }> {
  const tokenizerJson = await readJson(path.join(srcDir, "tokenizer.json"), what);
  const configFile = path.join(srcDir, "tokenizer_config.json");
  const tokenizerConfig = (await exists(configFile)) ? await readJson(configFile, what) : {};
  const template = await fs.readFile(path.join(srcDir, "chat_template.jinja"), "utf8").catch(() => null);
  if (template !== null) tokenizerConfig.chat_template = template;
  const generationFile = path.join(srcDir, "generation_config.json");
  const generationConfig = (await exists(generationFile)) ? await readJson(generationFile, what) : null;
  return { tokenizerJson, tokenizerConfig, generationConfig };
}
