/**
 * Request and response shapes of the public API (`/v1/…`), as the worker's schemas define them
 * (`GET /openapi.json` is the reference). Shapes that core already defines are imported from
 * core; the rest are declared here because their schemas live in workers/, which the client
 * must not import. `test/worker/client-types.test.ts` holds these equal to the worker's
 * schemas at type-check time, so a drift fails `npm run typecheck`.
 */
import type { Completion, Logprobs, Usage } from "#core/wire/runner-api";
import type { ModelManifest } from "#core/manifest/model-manifest";
import type { BakeReportBody } from "#core/wire/bake";
import type { DayUsage, DayUsageRow, UsageReport } from "#core/wire/usage-report";

export type { Completion, Logprobs, Usage, ModelManifest, DayUsage, DayUsageRow, UsageReport };

export type Visibility = "private" | "public";

/** An adapter of the registry (GET /v1/adapters/{id}). */
export interface Adapter {
  id: string;
  name: string;
  version: string;
  /** Owner tenant name. */
  owner: string;
  /** `owner/name@version`, usable wherever an id is. */
  ref: string;
  base_model: string;
  /** Largest module rank. */
  rank: number;
  alpha: number;
  scale: number;
  /** PEFT module paths the adapter modifies. */
  targets: string[];
  dtype: string;
  size_bytes: number;
  sha256: string;
  visibility: Visibility;
  description: string;
  tags: string[];
  downloads: number;
  /** Completions served with this adapter in the mix. */
  uses: number;
  created_at: string;
  /** Whether the adapter carries its own chat template (used when a chat request's mix is exactly this adapter). */
  chat_template: boolean;
  /** Baked adapters: strategy, discarded energy and fidelity to the exact mix (KL, top-1); null for uploads. */
  bake: BakeReportBody | null;
}

export interface AdapterPage {
  object: "list";
  data: Adapter[];
  next_cursor: string | null;
}

/** `uses`: most completions served first; `downloads`: most downloaded first. */
export type AdapterSort = "downloads" | "uses" | "recent" | "name";

/** Query of GET /v1/adapters. */
export interface AdapterQuery {
  /** Substring of name, description or tags. */
  q?: string;
  base_model?: string;
  tag?: string;
  /** `me`: only the caller's adapters. */
  owner?: "me";
  /** Only public adapters, or only the caller's private ones. */
  visibility?: Visibility;
  sort?: AdapterSort;
  /** 1..100 (default 20). */
  limit?: number;
  cursor?: string;
}

/** Metadata fields of POST /v1/adapters (beside the two files). */
export interface AdapterUploadFields {
  name: string;
  base_model: string;
  /** semver, default 1.0.0. */
  version?: string;
  visibility?: Visibility;
  description?: string;
  /** Comma-separated or a list. */
  tags?: string | string[];
}

/** PATCH /v1/adapters/{id}. */
export interface AdapterUpdate {
  visibility?: Visibility;
  description?: string;
  tags?: string | string[];
}

export interface AdapterDeleted {
  id: string;
  deleted: true;
  deleted_compositions: string[];
}

/** One adapter in a mix: wᵢ in ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ (any finite number). */
export interface MixEntry {
  /** Adapter id or `owner/name@version`. */
  id: string;
  weight: number;
}

export interface Composition {
  id: string;
  name: string;
  base_model: string;
  adapters: Array<{ id: string; ref: string; weight: number }>;
  created_at: string;
}

export interface CompositionCreate {
  name: string;
  adapters: MixEntry[];
}

export interface CompositionDeleted {
  id: string;
  deleted: true;
}

export type BakeStrategy = "linear" | "svd" | "ties" | "dare_linear" | "dare_ties" | "magnitude_prune";

/** POST /v1/compositions/{id}/bake. */
export interface BakeRequest {
  strategy: BakeStrategy;
  /** Required by ties, dare_*, magnitude_prune: (0, 1]. */
  density?: number;
  rank?: number;
  /** dare_* only. */
  seed?: number;
  name: string;
  version?: string;
  visibility?: Visibility;
  description?: string;
  tags?: string;
}

/** The answer of a bake: the new adapter, whose `bake` report is always set. */
export interface BakedAdapter extends Adapter {
  bake: BakeReportBody;
}

/** Options of /v1/completions and /v1/chat/completions (OpenAI's, plus the mix extensions). */
export interface SamplingOptions {
  model: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  /** 0 disables top-k (extension). */
  top_k?: number;
  /** Same seed, same text. */
  seed?: number;
  stop?: string | string[];
  ignore_eos?: boolean;
  /** Ad-hoc mix (extension); exclusive with `composition`; empty = base model. */
  adapters?: MixEntry[];
  /** Saved composition id or name (extension). */
  composition?: string;
  user?: string;
  stream_options?: { include_usage?: boolean };
}

export interface CompletionRequest extends SamplingOptions {
  /** Text, or token ids of the model's tokenizer. */
  prompt: string | number[];
  echo?: boolean;
  logprobs?: number | null;
}

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
  name?: string;
}

export interface ChatRequest extends SamplingOptions {
  messages: ChatMessage[];
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    message: { role: "assistant"; content: string };
    finish_reason: "stop" | "length" | null;
    logprobs: null;
  }>;
  usage?: Usage;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: { role?: "assistant"; content?: string };
    finish_reason: "stop" | "length" | null;
    logprobs: null;
  }>;
  usage?: Usage;
}

export interface Model {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

export interface ModelDetail extends Model {
  manifest: ModelManifest;
  merge_only_targets: string[];
}

export interface ApiKey {
  id: string;
  prefix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The key itself: shown once. */
  key: string;
}

export interface List<T> {
  object: "list";
  data: T[];
}
