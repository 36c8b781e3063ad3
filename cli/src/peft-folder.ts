/**
 * PEFT adapter folders on disk (`adapter_config.json` + `adapter_model.safetensors`, what
 * peft's save_pretrained writes, plus an optional `tokenizer_config.json` / `chat_template.jinja`
 * carrying the adapter's own chat template), checked locally with core before anything is sent:
 * the same parser the worker runs on an upload (readPeftAdapter), then core's checkCompatibility
 * against the base model's manifest, and the template check (adapterChatTemplate).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { checkCompatibility } from "#core/compat/index";
import { isAdapterFormatError } from "#core/errors";
import type { ModelManifest } from "#core/manifest/model-manifest";
import { readPeftAdapter, type PeftAdapterLoad } from "#core/peft/index";
import { adapterChatTemplate } from "#core/chat/adapter-chat-template";
import { ChatTemplateError, type ChatTemplateSpec } from "#core/chat/chat-template";
import { CHAT_TEMPLATE_PART, CONFIG_PART, TOKENIZER_CONFIG_PART, WEIGHTS_PART } from "../../client/src/index.js";
import { UsageError } from "./usage-error.js";

export interface PeftFolder {
  dir: string;
  configText: string;
  config: Record<string, unknown>;
  weights: Uint8Array;
  /** The folder's optional tokenizer_config.json text (its chat_template travels with the upload). */
  tokenizerConfigText?: string;
  /** The folder's optional chat_template.jinja. */
  chatTemplateText?: string;
}

/**
 * The folder's own chat template, checked with core (what the worker runs on the upload): null
 * when it carries none; a template that fails is a UsageError with the template's message.
 */
export function chatTemplateOfFolder(folder: PeftFolder): ChatTemplateSpec | null {
  try {
    return adapterChatTemplate({
      ...(folder.tokenizerConfigText !== undefined ? { tokenizerConfigText: folder.tokenizerConfigText } : {}),
      ...(folder.chatTemplateText !== undefined ? { jinjaText: folder.chatTemplateText } : {}),
    });
  } catch (e) {
    if (e instanceof ChatTemplateError) throw new UsageError(`${folder.dir}: ${e.message}`);
    throw e;
  }
}

/** Reads the two files of a PEFT folder; a missing file or a config that is not JSON is a UsageError. */
export function readPeftFolder(dir: string): PeftFolder {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) throw new UsageError(`${dir}: not a folder (expected a PEFT adapter folder with ${CONFIG_PART} and ${WEIGHTS_PART})`);
  const read = (name: string) => {
    try {
      return readFileSync(path.join(dir, name));
    } catch (e) {
      throw new UsageError(`${path.join(dir, name)}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (e as Error).message}`);
    }
  };
  const configText = read(CONFIG_PART).toString("utf8");
  const weights = new Uint8Array(read(WEIGHTS_PART));
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw new UsageError(`${path.join(dir, CONFIG_PART)}: config_not_json: ${(e as Error).message}`);
  }
  if (!config || typeof config !== "object" || Array.isArray(config)) {
    throw new UsageError(`${path.join(dir, CONFIG_PART)}: config_invalid: expected a JSON object`);
  }
  const optional = (name: string) => (existsSync(path.join(dir, name)) ? read(name).toString("utf8") : undefined);
  const tokenizerConfigText = optional(TOKENIZER_CONFIG_PART);
  const chatTemplateText = optional(CHAT_TEMPLATE_PART);
  return {
    dir,
    configText,
    config: config as Record<string, unknown>,
    weights,
    ...(tokenizerConfigText !== undefined ? { tokenizerConfigText } : {}),
    ...(chatTemplateText !== undefined ? { chatTemplateText } : {}),
  };
}

/**
 * Parses the folder with core's PEFT reader (what the worker runs on an upload). A refusal
 * becomes one UsageError naming the folder, with core's `code: message`.
 */
export function parsePeftFolder(folder: PeftFolder): PeftAdapterLoad {
  try {
    return readPeftAdapter(folder.config, folder.weights, { copy: true });
  } catch (e) {
    if (isAdapterFormatError(e)) throw new UsageError(`${folder.dir}: ${e.code}: ${e.message}`);
    throw e;
  }
}

/** core's checkCompatibility against the base model's manifest: every mismatch in one UsageError. */
export function checkFolderAgainstModel(folder: PeftFolder, load: PeftAdapterLoad, manifest: ModelManifest): void {
  const report = checkCompatibility(load.adapter, manifest);
  if (!report.ok) throw new UsageError(`${folder.dir}: incompatible with ${manifest.id}: ${report.errors.join("; ")}`);
}

/** Writes a PEFT folder (creating it); each file goes through a temporary name, so a failure leaves no half file. */
export function writePeftFolder(dir: string, configText: string, weights: Uint8Array): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of [
    [CONFIG_PART, configText],
    [WEIGHTS_PART, weights],
  ] as const) {
    const file = path.join(dir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  }
}
