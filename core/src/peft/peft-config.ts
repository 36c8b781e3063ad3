import { z } from "zod";
import { AdapterFormatError } from "../errors.js";
import { findDuplicateJsonKey } from "../safetensors/duplicate-keys.js";
import { compilePatterns } from "./pattern-key.js";
import { compileTargetMatcher } from "./target-modules.js";

/**
 * A validated PEFT LoRA `adapter_config.json`, reduced to what changes the math.
 * Unsupported features are refused by `parsePeftConfig`, never ignored.
 */
export interface PeftConfig {
  peftType: "LORA";
  /** Default rank r. */
  r: number;
  /** Default lora_alpha. */
  loraAlpha: number;
  /** scale = alpha / √r instead of alpha / r. */
  useRslora: boolean;
  /** Per-module r overrides (PEFT pattern keys, first match in key order wins). */
  rankPattern: Record<string, number>;
  /** Per-module alpha overrides. */
  alphaPattern: Record<string, number>;
  fanInFanOut: boolean;
  /** List of names/suffixes, a regex string (re.fullmatch), "all-linear", or null (model-type default). */
  targetModules: string[] | string | null;
  excludeModules: string[] | string | null;
  layersToTransform: number[] | null;
  layersPattern: string[] | null;
  baseModel: string | null;
  /** The parsed JSON object as received (unknown fields kept for provenance). */
  raw: Readonly<Record<string, unknown>>;
}

/** Module names that are embeddings or the output head: PEFT would wrap them in lora.Embedding or
 * treat them specially; this project serves Linear targets only. */
export const EMBEDDING_OR_HEAD_NAMES: readonly string[] = [
  "embed_tokens", "wte", "wpe", "word_embeddings", "embed_in", "embed_out", "lm_head", "shared", "embeddings",
];

export function isEmbeddingOrHeadModule(module: string): boolean {
  const last = module.slice(module.lastIndexOf(".") + 1);
  return EMBEDDING_OR_HEAD_NAMES.includes(last);
}

const positiveInt = z.number().int().positive();
const finite = z.number().refine(Number.isFinite, "must be a finite number");
const stringList = z.array(z.string().min(1));

const configSchema = z.looseObject({
  r: positiveInt.default(8),
  lora_alpha: finite.default(8),
  use_rslora: z.boolean().default(false),
  rank_pattern: z.record(z.string().min(1), positiveInt).nullable().default(null),
  alpha_pattern: z.record(z.string().min(1), finite).nullable().default(null),
  fan_in_fan_out: z.boolean().default(false),
  target_modules: z.union([stringList, z.string().min(1)]).nullable().default(null),
  exclude_modules: z.union([stringList, z.string().min(1)]).nullable().default(null),
  layers_to_transform: z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())]).nullable().default(null),
  layers_pattern: z.union([stringList, z.string().min(1)]).nullable().default(null),
  base_model_name_or_path: z.string().nullable().default(null),
});

/** Fields this parser knows: used, refused above, or known not to change inference. */
const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  "peft_type", "task_type", "base_model_name_or_path", "revision", "inference_mode", "auto_mapping", "peft_version",
  "r", "lora_alpha", "use_rslora", "rank_pattern", "alpha_pattern", "fan_in_fan_out", "target_modules", "exclude_modules",
  "layers_to_transform", "layers_pattern", "bias", "use_dora", "modules_to_save", "lora_dropout",
  // initialisation / training only
  "init_lora_weights", "loftq_config", "eva_config", "corda_config", "lora_ga_config", "runtime_config", "ensure_weight_tying",
  "megatron_core", "qalora_group_size",
]);

function refuse(code: ConstructorParameters<typeof AdapterFormatError>[0], message: string, details: Record<string, unknown> = {}): never {
  throw new AdapterFormatError(code, `adapter_config.json: ${message}`, details);
}

function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

/**
 * Parses and validates a PEFT LoRA config (object or JSON text).
 *
 * Refused with a specific code: peft_type other than "LORA" (unsupported_peft_type);
 * use_dora (unsupported_dora); modules_to_save (unsupported_modules_to_save); bias other than
 * "none" (unsupported_bias); embedding / lm_head names in target_modules (unsupported_target);
 * lora_bias, layer_replication, target_parameters, trainable_token_indices, use_qalora,
 * alora_invocation_tokens, arrow_config, megatron_config, use_bdlora and other LoRA variants, and any
 * unknown `use_*: true` or set `*_config` field from a newer PEFT (unsupported_feature). Malformed JSON, duplicate keys
 * and wrongly typed fields are `config_not_json` / `config_invalid`.
 * Training-only fields (lora_dropout, init_lora_weights, loftq/eva/corda configs, task_type, …)
 * do not change the forward pass and are accepted as is.
 */
export function parsePeftConfig(json: unknown): PeftConfig {
  let obj: unknown = json;
  if (typeof json === "string") {
    try {
      obj = JSON.parse(json);
    } catch (e) {
      refuse("config_not_json", `not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    const dup = findDuplicateJsonKey(json);
    if (dup) refuse("config_invalid", `key "${dup.key}" appears more than once${dup.path ? ` in "${dup.path}"` : ""}`, { key: dup.key });
  } else if (json instanceof Uint8Array) {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(json);
    } catch {
      refuse("config_not_json", "not valid UTF-8");
    }
    return parsePeftConfig(text);
  }
  if (typeof obj !== "object" || obj === null || Array.isArray(obj)) {
    refuse("config_invalid", `must be a JSON object, got ${obj === null ? "null" : Array.isArray(obj) ? "an array" : typeof obj}`);
  }
  const raw = obj as Record<string, unknown>;

  // What the adapter is: only plain LoRA.
  if (raw.peft_type === undefined) refuse("unsupported_peft_type", `"peft_type" is missing; expected "LORA"`);
  if (raw.peft_type !== "LORA") {
    refuse("unsupported_peft_type", `peft_type is ${JSON.stringify(raw.peft_type)}; only "LORA" adapters are supported`, { peftType: raw.peft_type });
  }
  if (raw.use_dora === true) {
    refuse("unsupported_dora", `use_dora is true: DoRA (weight-decomposed LoRA) rescales W by a learned magnitude vector and cannot be served as y = Wx + s·BAx`);
  }
  if (isSet(raw.modules_to_save)) {
    refuse("unsupported_modules_to_save", `modules_to_save ${JSON.stringify(raw.modules_to_save)} asks for fully fine-tuned copies of whole modules; only low-rank A/B updates are supported`, { modulesToSave: raw.modules_to_save });
  }
  if (raw.bias !== undefined && raw.bias !== "none") {
    refuse("unsupported_bias", `bias is ${JSON.stringify(raw.bias)}; only "none" is supported (trained biases are not part of a LoRA update here)`, { bias: raw.bias });
  }
  const unsupported: Array<[string, string]> = [
    ["lora_bias", "a trained bias on lora_B"],
    ["layer_replication", "layer replication changes the model's layer stack"],
    ["target_parameters", "LoRA on raw nn.Parameters (e.g. MoE experts) is not a Linear target"],
    ["trainable_token_indices", "trainable token embeddings"],
    ["use_qalora", "QA-LoRA pools the input before lora_A"],
    ["alora_invocation_tokens", "activated LoRA applies only after invocation tokens"],
    ["arrow_config", "Arrow routing between several LoRAs"],
    ["megatron_config", "Megatron tensor-parallel layers"],
    ["use_bdlora", "block-diagonal LoRA"],
    ["kasa_config", "a LoRA variant with a different forward pass"],
    ["monteclora_config", "MonteCLoRA samples the adapter weights"],
    ["velora_config", "a LoRA variant with a different forward pass"],
  ];
  for (const [field, why] of unsupported) {
    if (isSet(raw[field])) refuse("unsupported_feature", `${field} is set (${why}); not supported`, { field });
  }
  // Structural backstop for fields newer PEFT versions add: an unknown "use_*" flag that is true
  // or an unknown "*_config" that is set may switch the forward pass, so it is refused.
  for (const [field, value] of Object.entries(raw)) {
    if (KNOWN_FIELDS.has(field)) continue;
    if ((field.startsWith("use_") && value === true) || (field.endsWith("_config") && isSet(value))) {
      refuse("unsupported_feature", `unknown field ${field} is set (${JSON.stringify(value)?.slice(0, 60)}); it may change the forward pass, so it is refused rather than ignored`, { field });
    }
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String).join(".");
    refuse("config_invalid", `field "${path}" ${issue.message.toLowerCase().startsWith("must") ? issue.message : `is invalid: ${issue.message}`} (got ${JSON.stringify(pathValue(raw, issue.path))?.slice(0, 80)})`, { field: path });
  }
  const c = parsed.data;
  const asList = (v: string[] | string | null): string[] | null => (v === null ? null : Array.isArray(v) ? v : [v]);
  const config: PeftConfig = {
    peftType: "LORA",
    r: c.r,
    loraAlpha: c.lora_alpha,
    useRslora: c.use_rslora,
    rankPattern: c.rank_pattern ?? {},
    alphaPattern: c.alpha_pattern ?? {},
    fanInFanOut: c.fan_in_fan_out,
    targetModules: c.target_modules,
    excludeModules: c.exclude_modules,
    layersToTransform: c.layers_to_transform === null ? null : Array.isArray(c.layers_to_transform) ? c.layers_to_transform : [c.layers_to_transform],
    layersPattern: asList(c.layers_pattern),
    baseModel: c.base_model_name_or_path,
    raw,
  };
  if (Array.isArray(config.targetModules)) {
    const bad = config.targetModules.filter(isEmbeddingOrHeadModule);
    if (bad.length > 0) {
      refuse("unsupported_target", `target_modules includes embedding/output-head module(s) ${bad.map((b) => `"${b}"`).join(", ")}; only Linear projections inside the transformer blocks are supported`, { targets: bad });
    }
  }
  // Compile every regex now so a bad pattern is a config error, not a load-time surprise.
  compilePatterns(config.rankPattern, "rank_pattern");
  compilePatterns(config.alphaPattern, "alpha_pattern");
  compileTargetMatcher(config);
  return config;
}

function pathValue(obj: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = obj;
  for (const k of path) v = v !== null && typeof v === "object" ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}
